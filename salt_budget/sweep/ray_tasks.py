"""Units run as Ray tasks (teacher ladders, baseline runs): each retried from its last checkpoint,
and yielded as it finishes, with its result or, when it failed for good, the reason."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, TypeVar

Unit = TypeVar("Unit")


def run_as_tasks(
    function: Callable[[Unit, Any], Any], units: Iterable[Unit], plan: Any, *, cpus: float, gpus: float,
    retries: int,
) -> Iterator[tuple[Unit, Any, str | None]]:
    """(unit, function(unit, plan), None) per finished unit in finishing order, or (unit, None, reason)."""
    import ray

    task = ray.remote(function).options(num_cpus=cpus, num_gpus=gpus, max_retries=retries, retry_exceptions=True)
    plan_ref = ray.put(plan)  # shipped to the object store once, not once per task
    pending = {task.remote(unit, plan_ref): unit for unit in units}
    while pending:
        [ready], _ = ray.wait(list(pending), num_returns=1)
        unit = pending.pop(ready)
        try:
            yield unit, ray.get(ready), None
        except ray.exceptions.RayError as error:
            yield unit, None, str(error).strip().splitlines()[-1][:500]
