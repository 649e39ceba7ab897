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
import time

import pytest
from sqlalchemy import create_engine

from deployments.engine import ModelNotAvailable, StaticBatchingEngine, results_or_raise
from deployments.script_processor import ScriptProcessor
from deployments.storyboard.fallback import fallback_template
from deployments.storyboard.models import Scene, ScriptRequest, VideoScript
from serve_app.config import Settings
from serve_app.pipeline import ScriptPipeline
from serve_app.task_store import TaskStore
from serve_app.tasks import TaskRunner


class LocalStream:
    """A streamed response: iterate it with `async for`; `cancel()` as Serve's has it."""

    def __init__(self, items):
        self._items = items
        self.cancelled = False

    def __aiter__(self):
        return self._items.__aiter__()

    def cancel(self):
        self.cancelled = True


class LocalHandle:
    """`handle.method.remote(...)` on an in-process object, like a Serve DeploymentHandle;
    `handle.options(stream=True).method.remote(...)` for an async generator method."""

    def __init__(self, target):
        self._target = target
        self.calls: collections.Counter = collections.Counter()

    def options(self, stream: bool = False):
        assert stream, "only stream=True is used"
        target, calls = self._target, self.calls

        class Streamed:
            def __getattr__(self, name):
                method = getattr(target, name)

                class Method:
                    @staticmethod
                    def remote(*args) -> LocalStream:
                        calls[name] += 1
                        return LocalStream(method(*args))

                return Method

        return Streamed()

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

    async def chat_stream(self, request, min_interval_s=0.0):
        """As ChatGLMDeployment.chat_stream (each TextDelta as the engine's thread makes it,
        then the result), without the pacing."""
        self.calls += 1
        loop = asyncio.get_running_loop()
        deltas: asyncio.Queue = asyncio.Queue()

        def sink(delta):
            loop.call_soon_threadsafe(deltas.put_nowait, delta)

        work = loop.run_in_executor(None, self.engine.generate, [request], None, [sink])
        while not (work.done() and deltas.empty()):
            getting = asyncio.ensure_future(deltas.get())
            await asyncio.wait({getting, work}, return_when=asyncio.FIRST_COMPLETED)
            if getting.done():
                yield getting.result()
            else:
                getting.cancel()
        yield results_or_raise(work.result())[0]


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


def test_a_task_costs_one_store_call_to_accept_one_to_finish_and_bounded_progress_writes(
    tiny_model_dir, tmp_path
):
    settings = Settings(
        model_path=str(tiny_model_dir),
        max_new_tokens=16,
        self_repair=False,
        task_progress_interval_s=0.2,
    )

    async def run_one():
        runner, store = build_runner(settings, tmp_path)
        started = time.monotonic()
        task = await runner.submit(REQUEST)
        stored_when_accepted = store._target.get(task["task_id"])
        finished = await runner.wait(task["task_id"], 60)
        return task, stored_when_accepted, finished, runner, store, time.monotonic() - started

    task, stored_when_accepted, finished, runner, store, elapsed = asyncio.run(run_one())
    assert stored_when_accepted is not None and stored_when_accepted["attempts"] == 1
    assert task["status"] == "running" and task["worker_id"] == runner.worker_id
    assert finished == store._target.get(task["task_id"])
    assert finished["status"] == "completed" and finished["attempts"] == 1
    progress_writes = store.calls.pop("set_progress")
    assert store.calls == {"create_running": 1, "complete": 1}
    # Progress: the stages (generating, parsing, writing_fallback), coalesced when one comes
    # while another is being written, and token counts at most every interval between them.
    stages = 3
    assert 1 <= progress_writes <= stages + elapsed / settings.task_progress_interval_s + 1
    # The model was asked once, through the streaming call.
    assert runner.pipeline.chat.calls == {"chat_stream": 1}
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

    async def chat_stream(self, request, min_interval_s=0.0):
        await asyncio.sleep(1)
        async for item in super().chat_stream(request, min_interval_s):
            yield item


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


class RecordingWatcher:
    """A ReplyWatcher that keeps what it heard."""

    def __init__(self):
        self.heard: list[tuple] = []

    def enter(self, stage):
        self.heard.append(("stage", stage.value))

    def tokens(self, generated, budget):
        self.heard.append(("tokens", generated, budget))

    def scene(self, scene):
        self.heard.append(("scene", scene))


def without_duration(scene: dict) -> dict:
    return {key: value for key, value in scene.items() if key != "duration"}


def test_a_watched_task_hears_tokens_and_each_scene_of_the_reply_as_the_parser_makes_it(
    tiny_model_dir,
):
    # EOS ignored: the reply runs to the budget, long enough for whole scenes (2 of the tiny
    # model's greedy reply) and cut inside the next one, which the parser then repairs.
    settings = Settings(
        model_path=str(tiny_model_dir),
        max_new_tokens=400,
        bench_ignore_eos=True,
        self_repair=False,
        cache_enabled=False,
    )
    watcher = RecordingWatcher()

    async def write():
        pipeline = await build_pipeline(settings)
        return pipeline, await pipeline.write_script(REQUEST, watcher=watcher)

    pipeline, outcome = asyncio.run(write())
    assert outcome["source"] == "llm", outcome["fallback_reason"]
    assert pipeline.chat.calls == {"chat_stream": 1}
    stages = [heard[1] for heard in watcher.heard if heard[0] == "stage"]
    assert stages == ["generating", "parsing"]
    tokens = [heard[1] for heard in watcher.heard if heard[0] == "tokens"]
    assert tokens == sorted(tokens) and len(tokens) > 10 and tokens[-1] == 400
    assert {heard[2] for heard in watcher.heard if heard[0] == "tokens"} == {400}
    scenes = [heard[1] for heard in watcher.heard if heard[0] == "scene"]
    final = outcome["script"]["scenes"]
    assert 1 <= len(scenes) <= len(final)
    # Each scene as the finished script has it, but for the duration (shared out to the total
    # once the script is whole), which is the model's, within the scene length range.
    expected = final[: len(scenes)]
    assert [without_duration(s) for s in scenes] == [without_duration(s) for s in expected]
    for scene in scenes:
        Scene.model_validate(scene)
    # Every scene came while the reply was still being generated.
    last_scene = max(i for i, heard in enumerate(watcher.heard) if heard[0] == "scene")
    assert watcher.heard[last_scene + 1][0] == "tokens"
