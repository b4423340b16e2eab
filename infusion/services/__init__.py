"""infusion/services"""

import infusion.reads.trends.maintenance  # noqa: F401  (trend summaries kept in every write transaction)
