"""Kestra flow bodies used by the integration tests (task lists, indented for ``KestraTestSide.deploy``).

Flows are short (sub-second Sleep tasks) so the suite stays fast; the long one exists only to be killed.
"""

from __future__ import annotations

GREETING_INPUTS = """inputs:
  - id: name
    type: STRING
    defaults: world
"""
GREETING_OUTPUTS = """outputs:
  - id: greeting
    type: STRING
    value: "{{ outputs.result.value }}"
"""


def greeting_tasks(nap: str = "PT0.5S") -> str:
    """Logs ``Hello <name> from Kestra``, sleeps ``nap``, returns ``greeting-<name>`` (task + flow output)."""
    return f"""  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "Hello {{{{ inputs.name }}}} from Kestra"
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: {nap}
  - id: result
    type: io.kestra.plugin.core.debug.Return
    format: "greeting-{{{{ inputs.name }}}}"
"""


GREETING_TASKS = greeting_tasks()

FAILING_TASKS = """  - id: before
    type: io.kestra.plugin.core.log.Log
    message: about to fail
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: "kestra-side failure: disk on fire"
"""

SLOW_TASKS = """  - id: started
    type: io.kestra.plugin.core.log.Log
    message: long task started
  - id: long_sleep
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT120S
"""
"""Runs for two minutes: only ever ends by being killed (or by a test tearing the simulator down)."""

PAUSE_TASKS = """  - id: before_pause
    type: io.kestra.plugin.core.log.Log
    message: waiting for approval
  - id: approval
    type: io.kestra.plugin.core.flow.Pause
  - id: after_pause
    type: io.kestra.plugin.core.log.Log
    message: approved, carrying on
"""
"""Pauses (no delay: waits for a resume) between two log tasks."""


def sleep_tasks(duration: str) -> str:
    """A flow that logs, then sleeps ``duration`` (ISO-8601, e.g. ``PT10S``)."""
    return f"""  - id: started
    type: io.kestra.plugin.core.log.Log
    message: "sleeping {duration}"
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: {duration}
  - id: done
    type: io.kestra.plugin.core.log.Log
    message: "woke up after {duration}"
"""


WRITE_FILE_TASKS = """  - id: report
    type: io.kestra.plugin.core.storage.Write
    content: "report for {{ inputs.name }}"
    extension: .txt
"""
"""Writes one ``kestra:///`` file (``report for <name>``) as the output ``uri`` of task ``report``."""
WRITE_FILE_OUTPUTS = """outputs:
  - id: report_file
    type: FILE
    value: "{{ outputs.report.uri }}"
"""

FILE_ECHO_EXTRA = """inputs:
  - id: document
    type: FILE
outputs:
  - id: same_document
    type: FILE
    value: "{{ inputs.document }}"
"""
FILE_ECHO_TASKS = """  - id: received
    type: io.kestra.plugin.core.log.Log
    message: "received {{ inputs.document }}"
"""
"""Takes a FILE input and hands the same file back as the FILE flow output ``same_document``."""
