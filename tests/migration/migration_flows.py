"""Kestra flows of the migration tests (namespace ``airflow.migration.tests``)."""

from __future__ import annotations

NAMESPACE = "airflow.migration.tests"

COUNT_FLOW = f"""id: count
namespace: {NAMESPACE}
inputs:
  - id: orders
    type: JSON
  - id: region
    type: STRING
tasks:
  - id: log_count
    type: io.kestra.plugin.core.log.Log
    message: "counting {{{{ inputs.orders | length }}}} orders"
outputs:
  - id: count
    type: INT
    value: "{{{{ inputs.orders | length }}}}"
  - id: region
    type: STRING
    value: "{{{{ inputs.region | upper }}}}"
"""
"""``{count: len(orders), region: REGION}``: what the Airflow task ``count`` of the tests returns."""

SLOW_FLOW = f"""id: slow
namespace: {NAMESPACE}
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT20S
outputs:
  - id: done
    type: STRING
    value: "yes"
"""

FAILING_FLOW = f"""id: failing
namespace: {NAMESPACE}
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: "kestra-side failure"
"""

ALL_FLOWS = [COUNT_FLOW, SLOW_FLOW, FAILING_FLOW]
