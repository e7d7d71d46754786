"""How long a job will take, as a range: each stage's expected seconds from throughput measured on
this server, corrected by how fast the job actually goes once it is under way.

A single figure from fixed rates ("about 16 s") was off by 7x for a job that took 1 min 50 s: the
rates were another machine's, and the stages that came after were not counted. Here every stage is
counted, the expected rates are this server's own (recent jobs), and the stage running now is timed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The range around the best guess: jobs vary (other load on the cores, disk cache), so a single
# number would be a promise the server cannot keep.
LOW, HIGH = 0.8, 1.4
SLACK_S = 2.0  # fixed costs (loading, saving the model) a rate per photo does not capture


@dataclass
class Eta:
    """`expected`: seconds per stage, in the order they run. `elapsed` is the job's wall time so far."""

    expected: dict[str, float]
    started: dict[str, float] = field(default_factory=dict)  # stage -> elapsed when it began
    speed: float = 1.0  # measured / expected time of the stages done, applied to those not yet begun

    def remaining(self, stage: str, fraction: float, elapsed: float) -> tuple[float, float]:
        """(low, high) seconds left while `stage` is `fraction` done."""
        if stage not in self.started:
            self._finish_before(stage, elapsed)
            self.started[stage] = elapsed
        in_stage = elapsed - self.started[stage]
        planned = self.expected.get(stage, 0.0) * self.speed
        if fraction >= 0.1 and in_stage >= 1.0:  # enough of the stage seen to time it
            left = in_stage * (1 - fraction) / fraction
        else:
            left = max(planned - in_stage, planned * (1 - fraction))
        names = list(self.expected)
        later = names[names.index(stage) + 1:] if stage in names else []
        left += sum(self.expected[s] for s in later) * self.speed
        return max(0.0, LOW * left), HIGH * left + SLACK_S

    def _finish_before(self, stage: str, elapsed: float) -> None:
        done = [s for s in self.started if s != stage]
        if not done:
            return
        last = done[-1]
        took = elapsed - self.started[last]
        planned = self.expected.get(last, 0.0)
        if planned >= 1.0 and took > 0:  # a stage that took a measurable time tells the job's pace
            self.speed = min(4.0, max(0.25, took / planned))


def total(expected: dict[str, float]) -> tuple[float, float]:
    """(low, high) seconds for the whole job, before it starts."""
    s = sum(expected.values())
    return LOW * s, HIGH * s + SLACK_S
