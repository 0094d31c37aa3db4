"""The load of benchmarks/load_bench.py, for locust: every simulated user asks for one path
(BENCH_LOAD_PATH) as fast as it is answered, with BENCH_LOAD_AUTH as its Authorization."""

from __future__ import annotations

import os

from locust import HttpUser, constant, task


class PortalReader(HttpUser):
    wait_time = constant(0)

    @task
    def read(self) -> None:
        headers = {"Accept": "application/json"}
        if os.environ.get("BENCH_LOAD_AUTH"):
            headers["Authorization"] = os.environ["BENCH_LOAD_AUTH"]
        self.client.get(os.environ["BENCH_LOAD_PATH"], headers=headers, name="load")
