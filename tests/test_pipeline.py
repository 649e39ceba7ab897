"""The script pipeline and the task runner on the real engine, ScriptProcessor and TaskStore
classes, in-process.

They run as plain objects behind handle-shaped adapters, so this tests the pipeline's and the
runner's own logic (cache, source and reasons, which calls a task costs) on real generation and
a real SQLite file without starting Ray; the Serve graph itself is covered by the integration
tests.
"""

import asyncio
import collections
import contextlib

import pytest
from sqlalchemy import create_engine

from deployments.engine import ModelNotAvailable, StaticBatchingEngine, results_or_raise
from deployments.script_processor import ScriptProcessor
from deployments.storyboard.fallback import fallback_template
from deployments.storyboard.models import ScriptRequest, VideoScript
from serve_app.config import Settings
from serve_app.pipeline import ScriptPipeline
from serve_app.task_store import TaskStore
from serve_app.tasks import TaskRunner


class LocalHandle:
    """`handle.method.remote(...)` on an in-process object, like a Serve DeploymentHandle."""

    def __init__(self, target):
        self._target = target
        self.calls: collections.Counter = collections.Counter()

    def __getattr__(self, name):
        method = getattr(self._target, name)
        calls = self.calls

        async def call(*args):
            calls[name] += 1
            result = method(*args)
            return await result if asyncio.iscoroutine(result) else result

        class Method:
            @staticmethod
            def remote(*args) -> asyncio.Task:  # awaitable and cancellable, like a response
                return asyncio.ensure_future(call(*args))

        return Method


class LocalChat:
    """The ChatGLM deployment's `chat` without @serve.batch (which needs a replica)."""

    def __init__(self, model_path: str):
        self.calls = 0
        self.engine = StaticBatchingEngine(model_path)
        with contextlib.suppress(ModelNotAvailable):  # then every chat raises it, as in Serve
            self.engine.start()

    def chat(self, request):
        self.calls += 1
        return results_or_raise(self.engine.generate([request]))[0]


async def build_pipeline(settings: Settings) -> ScriptPipeline:
    processor = ScriptProcessor.func_or_class()
    chat = LocalChat(settings.model_path)
    return ScriptPipeline(LocalHandle(chat), LocalHandle(processor), settings)


REQUEST = ScriptRequest(prompt="制作一段关于森林探险的短视频", num_scenes=3)


async def script_for(pipeline: ScriptPipeline, request: ScriptRequest = REQUEST) -> dict:
    """What a task gets: the script at hand when there is one, else one written now."""
    return pipeline.script_at_hand(request) or await pipeline.write_script(request)


def test_greedy_llm_scripts_are_cached_and_served_again(tiny_model_dir):
    settings = Settings(model_path=str(tiny_model_dir), temperature=0.0, max_new_tokens=1024)

    async def twice():
        pipeline = await build_pipeline(settings)
        first = await script_for(pipeline)
        second = await script_for(pipeline)
        return pipeline, first, second

    pipeline, first, second = asyncio.run(twice())
    # Constrained decoding makes even a random model's reply a valid script.
    assert first["source"] == "llm", first["fallback_reason"]
    VideoScript.model_validate(first["script"])
    assert second["script"] == first["script"] and second["generation_ms"] == 0.0
    assert pipeline.cache_stats()["hits"] == 1 and pipeline.cache_stats()["misses"] == 1


def test_sampling_turns_the_cache_off(tiny_model_dir):
    settings = Settings(model_path=str(tiny_model_dir), temperature=0.7)
    pipeline = asyncio.run(build_pipeline(settings))
    assert pipeline.cache_stats() is None


@pytest.mark.parametrize("constrained", [True, False])
def test_a_missing_model_falls_back_with_the_reason(tmp_path, constrained):
    settings = Settings(model_path=str(tmp_path / "none"), constrained_decoding=constrained)

    async def write():
        return await script_for(await build_pipeline(settings))

    outcome = asyncio.run(write())
    assert outcome["source"] == "fallback"
    assert outcome["fallback_reason"].startswith("model_unavailable: model directory does not")
    assert len(VideoScript.model_validate(outcome["script"]).scenes) == 3
    assert outcome["fallback_template"] == fallback_template(REQUEST) != "general"


@pytest.mark.parametrize(("recheck_s", "chat_calls"), [(60.0, 1), (0.0, 3)])
def test_a_model_known_to_be_down_is_not_asked_again_until_the_recheck(
    tmp_path, recheck_s, chat_calls
):
    settings = Settings(model_path=str(tmp_path / "none"), model_recheck_s=recheck_s)

    async def write_three():
        pipeline = await build_pipeline(settings)
        outcomes = [await script_for(pipeline) for _ in range(3)]
        return pipeline, outcomes

    pipeline, outcomes = asyncio.run(write_three())
    assert pipeline.chat._target.calls == chat_calls
    assert {o["source"] for o in outcomes} == {"fallback"}
    assert len({o["fallback_reason"] for o in outcomes}) == 1
    assert outcomes[0]["fallback_reason"].startswith("model_unavailable")


def test_without_self_repair_a_bad_reply_falls_back_without_a_repair_turn(tiny_model_dir):
    # Unconstrained, a random model's reply is not JSON: the one attempt fails to parse.
    settings = Settings(
        model_path=str(tiny_model_dir),
        constrained_decoding=False,
        self_repair=False,
        max_new_tokens=16,
    )

    async def write():
        pipeline = await build_pipeline(settings)
        return pipeline, await script_for(pipeline)

    pipeline, outcome = asyncio.run(write())
    assert outcome["source"] == "fallback" and outcome["fallback_reason"].startswith("parse_failed")
    assert outcome["parse_failures"] == 1
    assert pipeline.chat._target.calls == 1 and pipeline.processor.calls["parse"] == 1


class HungProcessor:
    """A script processor whose parse never answers in time (a wedged replica)."""

    async def parse(self, request, text, fallback_on_failure=False):
        await asyncio.sleep(3600)


def test_the_deadline_covers_a_hung_processor_too(tiny_model_dir):
    settings = Settings(model_path=str(tiny_model_dir), generation_timeout_s=0.5)

    async def write():
        chat = LocalChat(settings.model_path)
        pipeline = ScriptPipeline(LocalHandle(chat), LocalHandle(HungProcessor()), settings)
        return await script_for(pipeline), chat.calls

    outcome, chat_calls = asyncio.run(write())
    assert outcome["source"] == "fallback" and outcome["fallback_reason"].startswith("timeout")
    assert chat_calls == 1
    VideoScript.model_validate(outcome["script"])


def build_runner(
    settings: Settings, tmp_path, chat: LocalChat | None = None
) -> tuple[TaskRunner, LocalHandle]:
    store = LocalHandle(TaskStore(tmp_path / "tasks.db"))
    chat = chat or LocalChat(settings.model_path)
    pipeline = ScriptPipeline(
        LocalHandle(chat), LocalHandle(ScriptProcessor.func_or_class()), settings
    )
    return TaskRunner(store, pipeline, settings), store


def test_a_task_costs_one_store_call_to_accept_and_one_to_finish(tiny_model_dir, tmp_path):
    settings = Settings(model_path=str(tiny_model_dir), max_new_tokens=16, self_repair=False)

    async def run_one():
        runner, store = build_runner(settings, tmp_path)
        task = await runner.submit(REQUEST)
        stored_when_accepted = store._target.get(task["task_id"])
        return task, stored_when_accepted, await runner.wait(task["task_id"], 60), runner, store

    task, stored_when_accepted, finished, runner, store = asyncio.run(run_one())
    assert stored_when_accepted is not None and stored_when_accepted["attempts"] == 1
    assert task["status"] == "running" and task["worker_id"] == runner.worker_id
    assert finished == store._target.get(task["task_id"])
    assert finished["status"] == "completed" and finished["attempts"] == 1
    assert store.calls == {"create_running": 1, "complete": 1}
    # The prompt is built locally; the one parse call also brings the fallback back.
    assert runner.pipeline.processor.calls == {"parse": 1}
    assert finished["source"] == "fallback" and finished["fallback_reason"].startswith("parse")


def test_while_the_model_is_known_down_a_task_is_one_store_call(tmp_path):
    settings = Settings(model_path=str(tmp_path / "none"), model_recheck_s=60)

    async def run_two():
        runner, store = build_runner(settings, tmp_path)
        first = await runner.submit(REQUEST)
        await runner.wait(first["task_id"], 60)  # learns that the model is down
        calls_before = store.calls.copy()
        second = await runner.submit(REQUEST)
        return second, store.calls - calls_before, runner.unfinished, store

    second, calls, unfinished, store = asyncio.run(run_two())
    assert calls == {"create_completed": 1} and unfinished == 0
    assert second == store._target.get(second["task_id"])
    assert second["status"] == "completed" and second["source"] == "fallback"
    assert second["fallback_reason"].startswith("model_unavailable")


@pytest.mark.parametrize("model_known_down", [False, True])
def test_a_length_and_count_in_the_prompt_reach_the_script_on_every_path(
    tmp_path, model_known_down
):
    settings = Settings(model_path=str(tmp_path / "none"), model_recheck_s=60)
    request = ScriptRequest(prompt="用5个镜头讲述咖啡的制作过程，一分钟左右", language="zh")

    async def run():
        runner, _ = build_runner(settings, tmp_path)
        if model_known_down:
            await runner.wait((await runner.submit(REQUEST))["task_id"], 60)
        task = await runner.submit(request)
        return await runner.wait(task["task_id"], 60) or task

    task = asyncio.run(run())
    assert task["request"]["duration_s"] == 60 and task["request"]["num_scenes"] == 5
    assert any(note.startswith("duration_s: 60") for note in task["notes"])
    script = VideoScript.model_validate(task["result"])
    assert len(script.scenes) == 5 and script.total_duration == 60
    assert task["fallback_template"] == "food"


class SlowChat(LocalChat):
    """A chat call that takes a while before it generates, as a remote one does."""

    async def chat(self, request):
        await asyncio.sleep(1)
        return super().chat(request)


def test_a_task_the_store_could_not_accept_is_refused_and_not_run(tiny_model_dir, tmp_path):
    settings = Settings(model_path=str(tiny_model_dir), max_new_tokens=16)
    chat = SlowChat(settings.model_path)

    async def submit_to_a_broken_store():
        runner, store = build_runner(settings, tmp_path, chat)
        # every statement fails from now on: the store's file cannot be opened any more
        store._target.engine.dispose()
        store._target.engine = create_engine(f"sqlite:///{tmp_path}/gone/tasks.db")
        with pytest.raises(Exception, match="unable to open database file"):
            await runner.submit(REQUEST)
        await asyncio.sleep(1.5)  # past the moment the model would have answered
        return runner

    runner = asyncio.run(submit_to_a_broken_store())
    assert runner.unfinished == 0 and chat.calls == 0  # the model call was cancelled
    assert runner.pipeline.processor.calls["parse"] == 0
    assert TaskStore(tmp_path / "tasks.db").list_tasks(None, 0, 10) == ([], 0)
