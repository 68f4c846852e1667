"""Units run as Ray tasks (teacher ladders, baseline runs): each retried from its last checkpoint,
and yielded as it finishes, with its result or, when it failed for good, the reason."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, TypeVar

Unit = TypeVar("Unit")


def run_as_tasks(
    function: Callable[..., Any], units: Iterable[Unit], plan: Any, *, cpus: float, gpus: float, retries: int,
    args: tuple[Any, ...] = (), max_concurrent: int | None = None,
) -> Iterator[tuple[Unit, Any, str | None]]:
    """(unit, function(unit, plan, *args), None) per finished unit in finishing order, or (unit, None, reason).
    At most `max_concurrent` run at once (all when None): tasks that start Ray Train workers hold no resources
    themselves, and workers waiting on a full cluster would time out."""
    import ray

    task = ray.remote(function).options(num_cpus=cpus, num_gpus=gpus, max_retries=retries, retry_exceptions=True)
    plan_ref = ray.put(plan)  # shipped to the object store once, not once per task
    waiting = list(units)
    pending: dict[Any, Unit] = {}
    while waiting or pending:
        while waiting and (max_concurrent is None or len(pending) < max_concurrent):
            unit = waiting.pop(0)
            pending[task.remote(unit, plan_ref, *args)] = unit
        [ready], _ = ray.wait(list(pending), num_returns=1)
        unit = pending.pop(ready)
        try:
            yield unit, ray.get(ready), None
        except ray.exceptions.RayError as error:
            yield unit, None, str(error).strip().splitlines()[-1][:500]
