"""Cold start: one call from a task profile to a trained router (`trouter coldstart`).

taxonomy -> items -> labels -> TRouter -> report -> summary, each step resumable; see
`trouter.coldstart.pipeline` for the flow and `trouter.coldstart.state` for how a rerun decides
what to skip.
"""

from trouter.coldstart.estimate import RunPlan, StepEstimate
from trouter.coldstart.pipeline import Coldstart, ColdstartOptions
from trouter.coldstart.reporter import QuietReporter, Reporter
from trouter.coldstart.results import (
    ItemsResult,
    LabelsResult,
    ModelCalls,
    Outcome,
    ReportResult,
    RouterResult,
    Summary,
    TaxonomyResult,
)
from trouter.coldstart.state import STEPS

__all__ = [
    "STEPS",
    "Coldstart",
    "ColdstartOptions",
    "ItemsResult",
    "LabelsResult",
    "ModelCalls",
    "Outcome",
    "QuietReporter",
    "ReportResult",
    "Reporter",
    "RouterResult",
    "RunPlan",
    "StepEstimate",
    "Summary",
    "TaxonomyResult",
]
