"""After the chair (issue 6): discharge education, the patient's printable summary,
the next-day follow-up call, delayed reactions and their rates.

Choices, with the facts they rest on:

- **Education** items are a fixed vocabulary (so the record is countable, not
  free text). Their patient-facing wording paraphrases docs/clinical-basis.md §11 (symptoms;
  "IRRs can occur up to 24 h after an infusion") and §4b (active infection →
  the next dose is delayed). What to tell a patient about rest, whom to call and
  emergencies has no clinical source: that wording is a product choice for the
  clinic to review. Education is additive: an item once given stays given (a
  mistake is amended by addendum, as for any discharged record).
- **Follow-up rows are computed, not pre-created.** The work list is a read:
  a discharged session without a `follow_up` row is "pending, 0 attempts". The
  row is created by the first call recorded. Creating rows when a page is
  opened would turn every rerun into a write, make two nurses opening the list
  race on the unique index, and write audit rows for nothing.
- **Delayed reactions** are Reaction rows with `delayed = True` on a discharged
  session, onset after discharge. docs/clinical-basis.md §11 says up to 24 h (Ocrevus and
  Briumvi labels); a call after a weekend can hear of an older one, so onsets
  up to 72 h are accepted, and one past 24 h must be confirmed by the nurse
  (`ConfirmationRequired`, like abnormal vitals) and is counted in the overall
  reaction rate but not in "within 24 h after". Past 72 h it is refused: that
  is an adverse event for the prescriber, not an infusion reaction (product
  choice; no clinical source gives it; docs/clinical-basis.md §10). Actions use the chart's vocabulary
  (`entries.ACTIONS`) so corrections keep working, limited to those that make
  sense at home ("observed", "medication_given"); what was advised goes in
  the note.
- **Rates** count sessions, like `metrics.reaction_rates`: a session with a
  reaction in the chair counts in "during session", one with a delayed reaction
  within 24 h of discharge in "within 24 h after"; a session can count in both.
"""

from infusion.services.aftercare.delayed import ACCEPT_WINDOW_HOURS as ACCEPT_WINDOW_HOURS
from infusion.services.aftercare.delayed import DELAYED_ACTIONS as DELAYED_ACTIONS
from infusion.services.aftercare.delayed import LABEL_WINDOW_HOURS as LABEL_WINDOW_HOURS
from infusion.services.aftercare.delayed import record_delayed_reaction as record_delayed_reaction
from infusion.services.aftercare.delayed import withdraw_delayed_reaction as withdraw_delayed_reaction
from infusion.services.aftercare.education import EDUCATION as EDUCATION
from infusion.services.aftercare.education import EDUCATION_STATUSES as EDUCATION_STATUSES
from infusion.services.aftercare.education import record_education as record_education
from infusion.services.aftercare.follow_up import FOLLOW_UP_COLUMNS as FOLLOW_UP_COLUMNS
from infusion.services.aftercare.follow_up import OUTCOMES as OUTCOMES
from infusion.services.aftercare.follow_up import follow_up_worklist as follow_up_worklist
from infusion.services.aftercare.follow_up import record_follow_up as record_follow_up
from infusion.services.aftercare.rates import DELAYED_RATE_COLUMNS as DELAYED_RATE_COLUMNS
from infusion.services.aftercare.rates import delayed_reaction_rates as delayed_reaction_rates
from infusion.services.aftercare.summary import ASK_THE_CLINIC as ASK_THE_CLINIC
from infusion.services.aftercare.summary import SUMMARY_STATUSES as SUMMARY_STATUSES
from infusion.services.aftercare.summary import patient_summary as patient_summary
from infusion.services.aftercare.summary import summary_html as summary_html
