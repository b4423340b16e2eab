"""infusion/services"""

import infusion.reads.due_summary  # noqa: F401  (the due list's summary, kept the same way)
import infusion.reads.trends.maintenance  # noqa: F401  (trend summaries kept in every write transaction)
