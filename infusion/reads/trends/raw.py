"""The Trends figures computed from the raw rows: the reference the summaries are tested against, and
the "before" of the benchmarks. Same signatures and columns as the public functions of the package."""

from infusion.reads.trends.completeness import completeness
from infusion.reads.trends.durations import duration_summary, session_durations
from infusion.reads.trends.pchart import monthly_reaction_pchart
from infusion.reads.trends.reactions import (
    reaction_rates,
    reaction_rates_by_grade,
    reaction_rates_by_infusion_number,
)
from infusion.reads.trends.time_lost import reaction_time_lost
from infusion.reads.trends.utilisation import chair_utilisation

__all__ = [
    "chair_utilisation",
    "completeness",
    "duration_summary",
    "monthly_reaction_pchart",
    "reaction_rates",
    "reaction_rates_by_grade",
    "reaction_rates_by_infusion_number",
    "reaction_time_lost",
    "session_durations",
]
