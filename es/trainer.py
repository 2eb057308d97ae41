"""The MPI master/worker ES trainer: rank 0 runs the strategy, ranks 1..N-1 evaluate candidates.

Knows nothing of world models: it optimises a parameter vector given ``evaluate(params, seed) ->
(return, steps)``, which every worker builds once for itself (e.g. with frozen V and M loaded).
Each generation rank 0 broadcasts the population as one float64 buffer, then hands out
(candidate, episode) tasks one at a time to whichever worker is free, so long and short episodes
leave nobody idle; it waits by polling with sleeps, never spinning a core. Without MPI it
evaluates in-process. Episode seeds derive from (seed, generation, candidate, episode): the fitness
of a candidate does not depend on which worker played it, so a resumed run is bit-for-bit the run
that never stopped. Candidates i and i + popsize/2 share their seeds (the original's antithetic
pairing); with ``shared_seeds`` every candidate of a generation plays the same ``num_episode`` seeds
(common random numbers: the ranking then compares candidates on the same tracks, not on tracks of
different difficulty).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from es.checkpoint import Checkpoints
from es.mpi import POLL_S, Comm, WorkQueue
from es.strategies import Strategy, strategy_from_state

# What an episode gives: (return, steps), or (return, steps, details), where details is anything
# small and picklable that a caller of evaluate_tasks wants per episode (training ignores it).
Outcome = tuple[float, int] | tuple[float, int, Any]
Evaluate = Callable[[np.ndarray, int], Outcome]
Job = tuple[Any, np.ndarray, int]  # (key, parameters, seed)
Played = tuple[int, float, int, float, Any]  # (task, return, steps, busy seconds, details)


class BatchEvaluate(Protocol):
    """An evaluator that plays ``slots`` episodes at once (e.g. envs stepped in lockstep so a
    policy network runs batched): it pulls jobs from ``next_job`` until that returns None."""

    slots: int

    def run(self, next_job: Callable[[], Job | None]) -> Iterator[tuple[Any, Outcome]]:
        """Yields (key, (return, steps[, details])) as episodes end."""


@dataclass
class ESSettings:
    """How the trainer uses a strategy; stored in the checkpoint and checked on resume."""

    generations: int
    num_episode: int = 16  # episodes per candidate; fitness is their mean return
    eval_every: int = 25  # evaluate the distribution's mean every so many generations (0: never)
    eval_episodes: int = 1024  # episodes of that evaluation, with fresh seeds
    seed: int = 0
    antithetic: bool = True
    # Every candidate of a generation plays the same seeds. Fitness differences then come from the
    # candidates, not from the episodes they drew; the seeds still change every generation.
    shared_seeds: bool = False


@dataclass
class GenerationRow:
    """One row of the training history."""

    generation: int
    elapsed_s: float
    fitness_mean: float
    fitness_min: float
    fitness_max: float
    fitness_std: float
    sigma_rms: float
    steps_mean: float
    steps_max: int
    evaluations: int
    busy_fraction: float  # worker time spent evaluating / (workers x generation wall time)
    eval_score: float | None = None


@dataclass
class TrainerState:
    """What a checkpoint holds besides the strategy."""

    generation: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_eval_score: float = float("-inf")
    best_eval_params: list[float] | None = None
    best_eval_generation: int = 0  # the generation whose mean scored best_eval_score
    elapsed_s: float = 0.0


def episode_seed(settings: ESSettings, popsize: int, generation: int, candidate: int, episode: int) -> int:
    """The env seed of one training episode; antithetic pairs (or, shared, all candidates) share theirs."""
    if settings.shared_seeds:
        candidate = 0
    elif settings.antithetic and popsize % 2 == 0:
        candidate %= popsize // 2
    seq = np.random.SeedSequence([settings.seed, 1, generation, candidate, episode])
    return int(seq.generate_state(1)[0] % 2**31)


def eval_seed(settings: ESSettings, generation: int, episode: int) -> int:
    """The env seed of one evaluation episode: a stream apart from the training seeds."""
    return int(np.random.SeedSequence([settings.seed, 2, generation, episode]).generate_state(1)[0] % 2**31)


def evaluate_all(comm: Comm, population: np.ndarray | None, tasks: list[tuple[int, int]],
                 evaluate: Evaluate | BatchEvaluate | None,
                 on_result: Callable[[float, int], None] | None = None) -> tuple[np.ndarray, list[Any]]:
    """On rank 0: play every task (row of ``population``, seed); returns (len(tasks), 3) of
    (return, steps, seconds) and each task's details (None where the evaluator gives none). Other
    ranks serve in :func:`worker_loop`. ``on_result(return, steps)`` is called as each task ends
    (for progress lines)."""
    results, details = np.zeros((len(tasks), 3)), [None] * len(tasks)
    if comm.size == 1:
        pending = iter([(k, row, seed) for k, (row, seed) in enumerate(tasks)])
        for k, ret, steps, seconds, detail in play(evaluate, population, lambda: next(pending, None)):
            results[k], details[k] = (ret, steps, seconds), detail
            if on_result is not None:
                on_result(ret, steps)
        return results, details
    comm.bcast(("evaluate", population.shape))
    comm.bcast_array(population, population.shape)
    queue = WorkQueue(comm, [(k, row, seed) for k, (row, seed) in enumerate(tasks)])
    received = 0
    while received < len(tasks) or not queue.done():
        for k, ret, steps, seconds, detail in comm.collect():
            results[k], details[k] = (ret, steps, seconds), detail
            received += 1
            if on_result is not None:
                on_result(ret, steps)
        queue.serve()
        time.sleep(POLL_S)
    return results, details


def play(evaluate: Evaluate | BatchEvaluate, population: np.ndarray,
         next_task: Callable[[], tuple[int, int, int] | None]) -> Iterator[Played]:
    """Play tasks (k, row, seed) until ``next_task`` returns None; yields (k, return, steps, busy
    seconds, details). A batch evaluator's episodes overlap: each counts the time since the previous
    one ended, so together they count the evaluator's wall time once, however full its slots were."""
    if not hasattr(evaluate, "run"):
        while (task := next_task()) is not None:
            k, row, seed = task
            start = time.perf_counter()
            ret, steps, detail = _outcome(evaluate(population[row], seed))
            yield k, ret, steps, time.perf_counter() - start, detail
        return

    def next_job() -> Job | None:
        task = next_task()
        if task is None:
            return None
        k, row, seed = task
        return k, population[row], seed

    last = time.perf_counter()
    for k, outcome in evaluate.run(next_job):
        now = time.perf_counter()
        ret, steps, detail = _outcome(outcome)
        yield k, ret, steps, now - last, detail
        last = now


def _outcome(outcome: Outcome) -> tuple[float, int, Any]:
    """(return, steps, details or None) of what an evaluator returned."""
    return float(outcome[0]), int(outcome[1]), outcome[2] if len(outcome) > 2 else None


def worker_loop(comm: Comm, make_evaluate: Callable[[], Evaluate | BatchEvaluate]) -> None:
    """On ranks 1..N-1: build the evaluator once, then play the tasks rank 0 hands out until told
    to stop."""
    evaluate = make_evaluate()
    while True:
        command, shape = comm.bcast(None)
        if command == "stop":
            return
        population = comm.bcast_array(None, shape)
        queue = WorkQueue(comm, [])
        for result in play(evaluate, population, queue.next):
            comm.report(result)
        comm.flush_reports()


def stop_workers(comm: Comm) -> None:
    """Tell the workers (waiting in :func:`worker_loop`) that training is over."""
    if comm.size > 1:
        comm.bcast(("stop", None))


def evaluate_tasks(comm: Comm, make_evaluate: Callable[[], Evaluate | BatchEvaluate],
                   population: np.ndarray, tasks: list[tuple[int, int]],
                   on_result: Callable[[float, int], None] | None = None
                   ) -> tuple[np.ndarray, list[Any]] | None:
    """Play each task (row of ``population``, seed) once over the ranks, as a generation is played,
    then release the workers; returns on rank 0 (len(tasks), 3) of (return, steps, seconds) and
    each task's details (see :data:`Outcome`)."""
    if not comm.is_root:
        worker_loop(comm, make_evaluate)
        return None
    played = evaluate_all(comm, population, tasks, make_evaluate() if comm.size == 1 else None, on_result)
    stop_workers(comm)
    return played


def resume(checkpoints: Checkpoints, make_strategy: Callable[[], Strategy], settings: ESSettings,
           identity: dict, force: bool) -> tuple[Strategy, TrainerState]:
    """The strategy and trainer state to continue from (fresh ones when there is no checkpoint).

    A checkpoint made with other settings that shape the search (identity: env, weights, strategy,
    popsize; settings other than ``generations``) is refused unless ``force``.
    """
    data = checkpoints.load()
    fresh = make_strategy()
    if data is None:
        return fresh, TrainerState()
    if not force:
        # A setting added after the checkpoint was written counts as its default (how it was made).
        made = {**asdict(ESSettings(generations=0)), **data["settings"]}
        old = {**data["identity"], **{k: v for k, v in made.items() if k != "generations"}}
        new = {**identity, **{k: v for k, v in asdict(settings).items() if k != "generations"}}
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if changed:
            details = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
            raise ValueError(f"{checkpoints.path} was made with other settings ({details}); "
                             "use another run directory, or --force to continue it anyway")
    try:
        restored, state = strategy_from_state(data["strategy"]), TrainerState(**data["trainer"])
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        raise ValueError(f"{checkpoints.path}: a damaged checkpoint ({' '.join(str(err).split())}); "
                         "move it away to start over, or restore a copy") from None
    shape = ("name", "popsize", "num_params")
    if any(getattr(restored, a) != getattr(fresh, a) for a in shape):
        # Not even --force can turn one strategy into another: it would keep the old one silently.
        was = ", ".join(f"{a} {getattr(restored, a)}" for a in shape)
        now = ", ".join(f"{a} {getattr(fresh, a)}" for a in shape)
        raise ValueError(f"{checkpoints.path} holds a strategy with {was}; this run needs {now}: use "
                         "another run directory")
    return restored, state


def run_generation(comm: Comm, strategy: Strategy, settings: ESSettings, state: TrainerState,
                   evaluate: Evaluate | BatchEvaluate | None, elapsed: Callable[[], float]) -> GenerationRow:
    """Ask, evaluate every candidate on ``num_episode`` episodes, tell; returns the history row."""
    generation_start = time.monotonic()
    population = strategy.ask()
    popsize, k = len(population), settings.num_episode
    tasks = [(i, episode_seed(settings, popsize, state.generation, i, j))
             for i in range(popsize) for j in range(k)]
    results, _ = evaluate_all(comm, population, tasks, evaluate)
    returns = results[:, 0].reshape(popsize, k)
    fitness = returns.mean(axis=1)
    strategy.tell(fitness)
    workers = max(comm.size - 1, 1)
    wall = time.monotonic() - generation_start
    finite = fitness[np.isfinite(fitness)] if np.isfinite(fitness).any() else np.zeros(1)
    return GenerationRow(
        generation=state.generation + 1, elapsed_s=round(elapsed(), 3),
        fitness_mean=float(finite.mean()), fitness_min=float(finite.min()), fitness_max=float(finite.max()),
        fitness_std=float(finite.std()), sigma_rms=float(strategy.result().sigma_rms),
        steps_mean=float(results[:, 1].mean()), steps_max=int(results[:, 1].max()),
        evaluations=len(tasks), busy_fraction=round(float(results[:, 2].sum() / (workers * wall)), 4),
    )


def evaluate_mean(comm: Comm, strategy: Strategy, settings: ESSettings, state: TrainerState,
                  evaluate: Evaluate | BatchEvaluate | None) -> float:
    """Mean return of the distribution's mean over ``eval_episodes`` fresh-seeded episodes."""
    mean = strategy.result().mean[None, :]
    tasks = [(0, eval_seed(settings, state.generation, j)) for j in range(settings.eval_episodes)]
    return float(evaluate_all(comm, mean, tasks, evaluate)[0][:, 0].mean())


OnRow = Callable[[GenerationRow, Strategy, TrainerState], None]


def train(comm: Comm, make_strategy: Callable[[], Strategy],
          make_evaluate: Callable[[], Evaluate | BatchEvaluate], settings: ESSettings,
          checkpoints: Checkpoints, identity: dict[str, Any], force: bool,
          on_row: OnRow) -> TrainerState | None:
    """Run the remaining generations on every rank; returns the final state on rank 0.

    After every generation rank 0 checkpoints (so a stop loses at most the generation under way)
    and calls ``on_row`` for logs. Every ``eval_every`` generations the mean is evaluated on fresh
    seeds and the best such parameters are kept in the state. Raising ``settings.generations``
    on a finished run continues it.
    """
    loaded: dict[str, Any] = {}

    def load() -> None:  # on rank 0; a refused checkpoint ends every rank with one line
        loaded["strategy"], loaded["state"] = resume(checkpoints, make_strategy, settings, identity, force)

    comm.on_root(load, (ValueError,))
    if not comm.is_root:
        worker_loop(comm, make_evaluate)
        return None
    strategy, state = loaded["strategy"], loaded["state"]
    if state.generation:
        # On stderr: stdout may be a caller's data (tests/es/es_job.py prints its result there).
        print(f"[train] resuming from {checkpoints.path} after generation {state.generation} "
              f"(of {settings.generations})", file=sys.stderr, flush=True)
    evaluate = make_evaluate() if comm.size == 1 else None
    started, before = time.monotonic(), state.elapsed_s  # elapsed time counts earlier runs too

    def elapsed() -> float:
        return before + time.monotonic() - started

    while state.generation < settings.generations:
        row = run_generation(comm, strategy, settings, state, evaluate, elapsed)
        state.generation = row.generation
        if settings.eval_every and state.generation % settings.eval_every == 0:
            row.eval_score = evaluate_mean(comm, strategy, settings, state, evaluate)
            if row.eval_score > state.best_eval_score:
                state.best_eval_score = row.eval_score
                state.best_eval_params = strategy.result().mean.tolist()
                state.best_eval_generation = state.generation
        state.elapsed_s = row.elapsed_s
        state.history.append(asdict(row))
        checkpoints.save(strategy.state_dict(), asdict(state), asdict(settings), identity)
        on_row(row, strategy, state)
    # Only after a normal end: after an error or a signal the workers are not waiting for this,
    # and the rank's exit (MPI_Abort, or os._exit for a signal) ends the job instead.
    stop_workers(comm)
    return state
