"""What the reliability tests observed, summed over the session into one summary line.

Every number is fed by a test from what it saw: faults the simulator really injected (read from its fault
rules' counters, never from the test's intent), whether the task survived them, each bad input tried and
whether it was refused, and the executions found per Airflow task (duplicates, ones left running, and ones
killed although neither the task's deadline nor a person asked for it: the rule of issue 10).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterator


class KestraFaultSource(Protocol):
    """Anything that counts the faults it injected (a simulator fault rule has ``fired``)."""

    fired: int


@dataclass
class KestraFaultCounter:
    """Faults a test injects itself (a simulator restart, a killed worker, a triggerer restart)."""

    fired: int = 0

    def hit(self) -> None:
        self.fired += 1


@dataclass
class KestraReliabilityTally:
    """The suite's counters; every number is something a test observed."""

    faults_injected: int = 0
    faults_survived: int = 0
    bad_inputs_tried: int = 0
    bad_inputs_refused: int = 0
    executions_duplicated: int = 0
    executions_orphaned: int = 0
    killed_without_cause: int = 0
    """Executions found KILLED (or KILLING) beyond those a deadline or a person's action accounts for."""
    tests_reporting: int = 0

    def summary_line(self) -> str:
        counters = [f for f in fields(self) if f.name != "tests_reporting"]
        return "reliability: " + ", ".join(
            f"{f.name.replace('_', ' ')} {getattr(self, f.name)}" for f in counters
        )


class KestraReliabilityRecorder:
    """What one test feeds into the session tally."""

    def __init__(self, tally: KestraReliabilityTally) -> None:
        self._tally = tally
        self._reported = False

    def _report(self) -> None:
        if not self._reported:
            self._reported = True
            self._tally.tests_reporting += 1

    @contextlib.contextmanager
    def faults(self, *sources: KestraFaultSource) -> Iterator[None]:
        """Count the faults ``sources`` fired inside the block; survived only if the block's assertions pass.

        ``sources`` are the simulator's fault rules (or :class:`KestraFaultCounter` for faults the test
        causes itself, like a restart); their ``fired`` counters say how many faults really happened. A block
        during which none fired is a broken test (it proves nothing), so it fails.
        """
        self._report()
        before = sum(source.fired for source in sources)
        survived = False
        try:
            yield
            survived = True
        finally:
            injected = sum(source.fired for source in sources) - before
            self._tally.faults_injected += injected
            if survived:
                self._tally.faults_survived += injected
        assert injected > 0, "no fault was injected: the scenario did not exercise what it claims"

    @contextlib.contextmanager
    def bad_input(self) -> Iterator[None]:
        """One bad input tried; refused if the block (which asserts the refusal) passes."""
        self._report()
        self._tally.bad_inputs_tried += 1
        yield
        self._tally.bad_inputs_refused += 1

    def executions(self, per_try: dict[int, int], running: int, killed_without_cause: int = 0) -> None:
        """Record the executions found for one task: ``per_try`` maps a try number to its count."""
        self._report()
        self._tally.executions_duplicated += sum(max(0, count - 1) for count in per_try.values())
        self._tally.executions_orphaned += running
        self._tally.killed_without_cause += killed_without_cause
