"""The simulator's bulk endpoints cut their body as Kestra does: at every ``---``, pieces kept as they are
(``FlowController#bulkUpdateFlows``: ``flows.split("---")``,
kestra-io/kestra@044883a011f1d0531cba4f23987ab5799f1d46eb), while ``/flows/validate`` cuts on
``---`` lines only."""

from __future__ import annotations

import requests

from airflow_provider_kestra.testing import KestraSimulator

LOG = "tasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"


def test_bulk_keeps_each_piece_byte_for_byte() -> None:
    first = f"id: first\nnamespace: sim.bulk\n{LOG}".rstrip("\n")  # no final newline
    second = f"id: second\nnamespace: sim.bulk\n{LOG}"
    with KestraSimulator(kestra_version="1.3") as sim, requests.Session() as http:
        http.auth = (sim.username, sim.password)
        api = f"{sim.url}/api/v1/main/flows"
        answer = http.post(
            f"{api}/bulk",
            params={"namespace": "sim.bulk", "delete": "false"},
            data=f"{first}---{second}",
            headers={"Content-Type": "application/x-yaml"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert [flow["id"] for flow in answer.json()] == ["first", "second"]
        stored = [
            http.get(f"{api}/sim.bulk/{i}", params={"source": "true"}, timeout=30).json()
            for i in ("first", "second")
        ]
        assert [flow["source"] for flow in stored] == [first, second]
