"""Cloud Tasks v2 (google.cloud.tasks.v2.CloudTasks) in memory: queues and their tasks.

What the real service does that the client tests look at: queue and task names checked against
their parents, ALREADY_EXISTS / NOT_FOUND, `state: PAUSED` filters, pages, update masks over the
queue's settings, pause/resume, and the task views (BASIC leaves out the HTTP body).
"""

from __future__ import annotations

import datetime
import re
from types import ModuleType
from typing import Any

import betterproto

from tests.support.cloud_fakes.errors import already_exists, invalid_argument, not_found
from tests.support.cloud_fakes.paging import apply_mask, matches, page

DOMAIN = "cloudtasks.googleapis.com"
# AIP-122 ids, as the Queue and Task comments of cloudtasks' protos describe them.
_QUEUE_ID = re.compile(r"^[A-Za-z0-9-]{1,100}$")
_TASK_ID = re.compile(r"^[A-Za-z0-9_-]{1,500}$")
# What UpdateQueue may change (the output-only fields are not among them).
QUEUE_SETTINGS = (
    "app_engine_routing_override",
    "rate_limits",
    "retry_config",
    "stackdriver_logging_config",
)
NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def make_cloud_tasks(pb: ModuleType) -> Any:
    """A `CloudTasksBase` instance with no queues (`pb` is the generated google.cloud.tasks.v2)."""
    empty = pb.betterproto_lib_google_protobuf.Empty

    class CloudTasks(pb.CloudTasksBase):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            self.queues: dict[str, Any] = {}
            self.tasks: dict[str, Any] = {}
            self.received: list[Any] = []  # every request, as the handler got it

        # --- queues ---

        async def create_queue(self, request: Any) -> Any:
            self.received.append(request)
            queue = request.queue
            parent, _, queue_id = queue.name.rpartition("/queues/")
            if parent != request.parent or not _QUEUE_ID.match(queue_id):
                why = f"must be {request.parent}/queues/QUEUE_ID, QUEUE_ID letters, digits, hyphens"
                raise invalid_argument("queue.name", why)
            if queue.name in self.queues:
                raise already_exists(DOMAIN, "Queue", queue.name)
            queue.state = pb.QueueState.RUNNING
            self.queues[queue.name] = queue
            return queue

        async def get_queue(self, request: Any) -> Any:
            self.received.append(request)
            return self._queue(request.name)

        async def list_queues(self, request: Any) -> Any:
            self.received.append(request)
            fields = {"state": lambda queue: pb.QueueState(queue.state).name}
            mine = [q for q in self.queues.values() if q.name.startswith(request.parent + "/")]
            chosen = [q for q in mine if matches(request.filter, q, fields)]
            queues, token = page(chosen, request.page_size, request.page_token, _name)
            return pb.ListQueuesResponse(queues=queues, next_page_token=token)

        async def update_queue(self, request: Any) -> Any:
            self.received.append(request)
            queue = self._queue(request.queue.name)
            apply_mask(queue, request.queue, request.update_mask.paths, QUEUE_SETTINGS)
            return queue

        async def delete_queue(self, request: Any) -> Any:
            self.received.append(request)
            self._queue(request.name)
            del self.queues[request.name]
            for name in [t for t in self.tasks if t.startswith(request.name + "/tasks/")]:
                del self.tasks[name]
            return empty()

        async def pause_queue(self, request: Any) -> Any:
            return self._set_state(request, pb.QueueState.PAUSED)

        async def resume_queue(self, request: Any) -> Any:
            return self._set_state(request, pb.QueueState.RUNNING)

        def _set_state(self, request: Any, state: Any) -> Any:
            self.received.append(request)
            queue = self._queue(request.name)
            queue.state = state
            return queue

        def _queue(self, name: str) -> Any:
            if name not in self.queues:
                raise not_found("Queue", name)
            return self.queues[name]

        # --- tasks ---

        async def create_task(self, request: Any) -> Any:
            self.received.append(request)
            self._queue(request.parent)
            task = request.task
            if not task.name:
                task.name = f"{request.parent}/tasks/{len(self.tasks) + 1}"
            parent, _, task_id = task.name.rpartition("/tasks/")
            if parent != request.parent or not _TASK_ID.match(task_id):
                raise invalid_argument("task.name", f"must be {request.parent}/tasks/TASK_ID")
            if task.name in self.tasks:
                raise already_exists(DOMAIN, "Task", task.name)
            task.create_time = task.schedule_time = NOW
            self.tasks[task.name] = task
            return self._view(task, request.response_view)

        async def get_task(self, request: Any) -> Any:
            self.received.append(request)
            return self._view(self._task(request.name), request.response_view)

        async def list_tasks(self, request: Any) -> Any:
            self.received.append(request)
            self._queue(request.parent)
            mine = [t for t in self.tasks.values() if t.name.startswith(request.parent + "/")]
            tasks, token = page(mine, request.page_size, request.page_token, _name)
            views = [self._view(task, request.response_view) for task in tasks]
            return pb.ListTasksResponse(tasks=views, next_page_token=token)

        async def delete_task(self, request: Any) -> Any:
            self.received.append(request)
            del self.tasks[self._task(request.name).name]
            return empty()

        async def run_task(self, request: Any) -> Any:
            """Dispatches the task now: one more dispatch, recorded as its last attempt."""
            self.received.append(request)
            task = self._task(request.name)
            if self._queue(task.name.rpartition("/tasks/")[0]).state != pb.QueueState.RUNNING:
                raise invalid_argument("name", f"the queue of {task.name} is not running")
            task.dispatch_count += 1
            task.last_attempt = pb.Attempt(schedule_time=task.schedule_time, dispatch_time=NOW)
            if task.dispatch_count == 1:
                task.first_attempt = pb.Attempt(dispatch_time=NOW)
            return self._view(task, request.response_view)

        def _task(self, name: str) -> Any:
            if name not in self.tasks:
                raise not_found("Task", name)
            return self.tasks[name]

        def _view(self, task: Any, view: Any) -> Any:
            """The task as `view` shows it: BASIC (the default) leaves out the request body."""
            shown = pb.Task().parse(bytes(task))
            shown.view = pb.TaskView.FULL if view == pb.TaskView.FULL else pb.TaskView.BASIC
            _, target = betterproto.which_one_of(shown, "message_type")
            if shown.view == pb.TaskView.BASIC and target is not None:
                target.body = b""  # touching the other member would switch the oneof
            return shown

    return CloudTasks()


def _name(item: Any) -> str:
    return str(item.name)
