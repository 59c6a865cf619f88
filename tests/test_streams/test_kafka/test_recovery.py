"""The worker's table recovery stops the flow before it resumes the stream partitions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from faust.tables.recovery import Recovery

from perfloop.schemas.config import PerfloopConfig
from perfloop.streams.kafka.app import build_app
from perfloop.streams.kafka.recovery import StreamSafeRecovery


def test_recovery_completes_with_the_flow_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = PerfloopConfig.model_validate({"worker": {"state_dir": str(tmp_path / "worker")}})
    seen: dict[str, bool] = {}

    async def completed(self: Recovery, generation_id: int = 0) -> None:
        # Faust's completion: resume the stream partitions, seek them, resume the flow
        seen["consumer delivers"] = self.app.consumer.flow_active
        seen["queues take events"] = self.app.flow_control.is_active()

    monkeypatch.setattr(Recovery, "on_recovery_completed", completed)

    async def scenario() -> Any:
        app, _ = build_app(config)
        recovery = app.tables.recovery
        # recovery resumed both to read the changelogs
        app.consumer.resume_flow()
        app.flow_control.resume()
        await recovery.on_recovery_completed(1)
        return recovery

    recovery = asyncio.run(scenario())
    assert isinstance(recovery, StreamSafeRecovery)
    assert seen == {"consumer delivers": False, "queues take events": False}
