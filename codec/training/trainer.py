"""A generic trainer: one loop for every model of the project (codec, TTS), any scale.

A model plugs in by implementing :class:`TrainingTask`: it declares its modules and
optimizer parameter groups, its datasets, and a ``train_step`` that computes losses and
hands each one to ``StepRunner.step(optimizer_name, loss)``. The trainer owns everything
else: devices, ``torchrun`` / DistributedDataParallel (gloo on CPU, NCCL on CUDA),
mixed precision, AdamW with warm-up and decay, gradient clipping, non-finite loss
handling, deterministic rank-sharded data order, validation, logging (progress bar,
``train.log``, TensorBoard) and atomic, resumable checkpoints.

Datasets are indexed by keys ``(item_index, item_seed)``: the batch of step ``s`` on rank
``r`` is a pure function of ``(seed, s, r, world_size, len(dataset))``, and datasets draw
any randomness (crops, gains) from ``item_seed`` (:mod:`codec.training.sampler`). Together with the RNG states stored in
checkpoints this makes a resumed run on CPU bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from codec.training import checkpoint as ckpt
from codec.training.distributed import setup_distributed, to_device
from codec.training.recipe import load_config, save_config
from codec.training.run_log import RunLog, batch_weighted_means, format_metrics, window_means
from codec.training.sampler import StepBatchSampler, mix_seed, validation_keys
from codec.training.step import (
    NonFiniteLoss,
    StepRunner,
    TrainingDiverged,
    TrainingTask,
    seed_everything,
)
from codec.training.trainer_config import TrainerConfig, lr_factor, per_optimizer

TRAINING_STATE_FILE = "trainer_state.pt"
CHECKPOINTS_DIR = "checkpoints"


@dataclass
class TrainResult:
    """Outcome of :meth:`Trainer.fit`."""

    start_step: int  # step the run started (or resumed) at
    step: int  # steps completed at the end
    skipped_steps: int  # steps skipped for non-finite losses in this run
    checkpoint: Path | None  # last checkpoint written or loaded
    train_metrics: dict[str, float] = field(default_factory=dict)  # last logged averages
    valid_metrics: dict[str, float] = field(default_factory=dict)  # last validation


class Trainer:
    """Runs a :class:`TrainingTask` single-process or under ``torchrun``.

    Args:
        task: the model to train.
        config: the trainer section of the run's configuration.
        run_config: all sections of the configuration (dataclasses), stored with each
            checkpoint and in ``out_dir/config.yaml`` so that a run can be rebuilt.
    """

    def __init__(
        self, task: TrainingTask, config: TrainerConfig, run_config: Mapping[str, Any] | None = None
    ) -> None:
        self.task, self.config = task, config
        self.run_config = dict(run_config) if run_config is not None else {"trainer": config}
        self.out_dir = Path(config.out_dir)
        self.checkpoint_root = self.out_dir / CHECKPOINTS_DIR

    # ----------------------------------------------------------------- setup
    def _build(self) -> None:
        cfg, device = self.config, self.dist.device
        modules = self.task.modules()
        if not modules or not all(isinstance(m, nn.Module) for m in modules.values()):
            raise TypeError("task.modules() must return a non-empty dict of nn.Module")
        self.modules = {n: m.to(device) for n, m in modules.items()}
        owner = {id(p): n for n, m in self.modules.items() for p in m.parameters()}
        self.frozen = [self._resolve_frozen(path) for path in cfg.freeze]
        frozen_ids = {id(p) for m in self.frozen for p in m.parameters()}
        for m in self.frozen:
            m.requires_grad_(False)
        groups = self.task.param_groups()
        if not groups:
            raise ValueError("task.param_groups() declared no optimizer")
        seen: set[int] = set()
        for opt_name, params in groups.items():
            for p in params:
                if id(p) not in owner:
                    raise ValueError(
                        f"param group {opt_name!r} holds a parameter that belongs to none of "
                        f"the task's modules ({', '.join(self.modules)}); it would be neither "
                        "synchronised nor checkpointed"
                    )
                if id(p) in seen:
                    raise ValueError(
                        f"a parameter appears in more than one param group ({opt_name!r})"
                    )
                seen.add(id(p))
        groups = {n: [p for p in params if id(p) not in frozen_ids] for n, params in groups.items()}
        for opt_name, params in groups.items():
            if not params:
                raise ValueError(
                    f"trainer.freeze {cfg.freeze} leaves optimizer {opt_name!r} nothing to train"
                )
        names = list(groups)
        lrs = per_optimizer(cfg.lr, names, "lr")
        self.grad_clip = per_optimizer(cfg.grad_clip, names, "grad_clip")
        self.params = {n: list(groups[n]) for n in names}
        self.optimizers = {
            n: torch.optim.AdamW(
                self.params[n], lr=lrs[n], betas=cfg.betas, weight_decay=cfg.weight_decay
            )
            for n in names
        }
        self.schedulers = {
            n: torch.optim.lr_scheduler.LambdaLR(o, lambda s: lr_factor(s, cfg))
            for n, o in self.optimizers.items()
        }
        self.amp_dtype = None
        if device.type == "cuda" and cfg.mixed_precision != "no":
            self.amp_dtype = torch.bfloat16 if cfg.mixed_precision == "bf16" else torch.float16
        self.scalers = (
            {n: torch.amp.GradScaler("cuda") for n in names}
            if self.amp_dtype == torch.float16
            else {}
        )

    def _resolve_frozen(self, path: str) -> nn.Module:
        name, _, sub = path.partition(".")
        if name not in self.modules:
            raise ValueError(
                f"trainer.freeze names {path!r}, but the task's modules are: {', '.join(self.modules)}"
            )
        try:
            return self.modules[name].get_submodule(sub) if sub else self.modules[name]
        except AttributeError:
            children = ", ".join(n for n, _ in self.modules[name].named_children())
            raise ValueError(
                f"trainer.freeze names {path!r}, but module {name!r} has no submodule {sub!r} "
                f"(its children: {children})"
            ) from None

    def _train_mode(self) -> None:
        """Every module in training mode except the frozen parts."""
        for m in self.modules.values():
            m.train()
        for m in self.frozen:
            m.eval()

    def _wrap(self) -> dict[str, nn.Module]:
        if not self.dist.distributed:
            return dict(self.modules)
        wrapped: dict[str, nn.Module] = {}
        for name, module in self.modules.items():
            if any(p.requires_grad for p in module.parameters()):
                wrapped[name] = DistributedDataParallel(
                    module,
                    device_ids=[self.dist.device.index]
                    if self.dist.device.type == "cuda"
                    else None,
                    find_unused_parameters=self.config.ddp_find_unused_parameters,
                )
            else:
                wrapped[name] = module
        return wrapped

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.amp_dtype)

    # ----------------------------------------------------------- checkpoints
    def _save(self, step: int) -> Path | None:
        rng_states = self.dist.gather(ckpt.capture_rng_state())
        path = None
        if self.dist.is_main:
            state = {
                "step": step,
                "world_size": self.dist.world_size,
                "bad_steps": self.bad_steps,
                "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
                "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
                "scalers": {n: s.state_dict() for n, s in self.scalers.items()},
                "rng": rng_states,
            }

            def write(folder: Path) -> None:
                for name, module in self.modules.items():
                    ckpt.save_module_weights(module, folder / f"{name}.safetensors")
                for name, config in self.task.module_configs().items():
                    (folder / f"{name}.json").write_text(json.dumps(config, indent=2) + "\n")
                ckpt.save_training_state(state, folder / TRAINING_STATE_FILE)
                save_config(self.run_config, folder / "config.yaml")

            path = ckpt.write_checkpoint_atomically(
                self.checkpoint_root, step, write, keep=self.config.keep_checkpoints
            )
            self.log(f"step {step}: checkpoint {path}")
        self.dist.barrier()
        return path

    def _load(self, path: Path) -> int:
        for name, module in self.modules.items():
            ckpt.load_module_weights(module, path / f"{name}.safetensors")
        state = ckpt.load_training_state(path / TRAINING_STATE_FILE)
        if set(state["optimizers"]) != set(self.optimizers):
            raise RuntimeError(
                f"checkpoint {path} has optimizers {sorted(state['optimizers'])}, the task "
                f"declares {sorted(self.optimizers)}"
            )
        for n, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][n])
            self.schedulers[n].load_state_dict(state["schedulers"][n])
            if n in self.scalers and n in state["scalers"]:
                self.scalers[n].load_state_dict(state["scalers"][n])
        self.bad_steps = int(state["bad_steps"])
        if state["world_size"] == self.dist.world_size:
            self._resume_rng = state["rng"][self.dist.rank]
        else:
            self.log(
                f"checkpoint was written with {state['world_size']} processes, resuming with "
                f"{self.dist.world_size}: data order and random streams change from here"
            )
        return int(state["step"])

    # ------------------------------------------------------------ validation
    def _validate(self, step: int) -> dict[str, float]:
        dataset, cfg = self.valid_data, self.config
        all_batches = validation_keys(len(dataset), cfg.batch_size, cfg.valid_batches, cfg.seed)
        mine = all_batches[self.dist.rank :: self.dist.world_size]
        loader = DataLoader(
            dataset,
            batch_sampler=mine,
            collate_fn=self.task.collate,
            num_workers=cfg.num_workers,
            pin_memory=self.dist.device.type == "cuda",
            generator=torch.Generator(),
        )
        count, first = 0, []

        def batches() -> Iterator[Any]:
            nonlocal count
            for batch in loader:
                batch = to_device(batch, self.dist.device)
                if not first:
                    first.append(batch)
                count += 1
                yield batch

        # Validation draws from its own fixed random stream and leaves training's untouched,
        # so the training trajectory does not depend on valid_every.
        saved = ckpt.capture_rng_state()
        seed_everything(mix_seed(cfg.seed, "valid-rng", self.dist.rank))
        for m in self.modules.values():
            m.eval()
        try:
            with torch.no_grad(), self._autocast():
                metrics = (
                    {k: float(v) for k, v in self.task.validate(batches(), step).items()}
                    if mine
                    else {}
                )
                if self.writer is not None and first:
                    self.task.log_samples(self.writer, first[0], step)
        finally:
            self._train_mode()
            ckpt.restore_rng_state(saved)
        total, merged = batch_weighted_means(self.dist.gather((count, metrics)))
        if self.dist.is_main:
            self.log(f"step {step}: valid ({total} batches) | {format_metrics(merged)}")
            if self.writer is not None:
                for key, value in merged.items():
                    self.writer.add_scalar(f"valid/{key}", value, step)
        return merged

    # ------------------------------------------------------------------- fit
    def _start(self, resume: bool) -> tuple[int, Path | None]:
        """Build optimizers, load the latest checkpoint if asked, wrap the modules for DDP,
        set the random streams.

        Returns the step to start at and the checkpoint loaded (if any)."""
        cfg = self.config
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.log = RunLog(self.out_dir / "train.log")
            ckpt.remove_stale_temporaries(self.checkpoint_root)
            save_config(self.run_config, self.out_dir / "config.yaml")
        self.dist.barrier()
        self._build()
        self.bad_steps, self._resume_rng = 0, None
        start, loaded = 0, None
        if resume:
            loaded = ckpt.find_latest_checkpoint(self.checkpoint_root)
            if loaded is None:
                self.log(f"no checkpoint in {self.checkpoint_root}: starting from step 0")
            else:
                start = self._load(loaded)
                self.log(f"resumed from {loaded} at step {start}")
        if loaded is None and cfg.init_from:
            self._init_weights(cfg.init_from)
        self.wrapped = self._wrap()
        # Random streams are set last, after everything that might draw from them.
        if self._resume_rng is not None:
            ckpt.restore_rng_state(self._resume_rng)
        else:
            seed_everything(mix_seed(cfg.seed, "train-rng", self.dist.rank))
        if self.amp_dtype is None and cfg.mixed_precision != "no":
            self.log(f"mixed_precision={cfg.mixed_precision} applies on CUDA only; using float32")
        self.valid_data = self.task.valid_dataset() if cfg.valid_every else None
        if self.valid_data is not None and len(self.valid_data) == 0:
            raise ValueError("the validation dataset is empty")
        if self.dist.is_main and cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out_dir / "tensorboard"), purge_step=start)
        return start, loaded

    def _init_weights(self, sources: Mapping[str, str]) -> None:
        for name, source in sources.items():
            if name not in self.modules:
                raise ValueError(
                    f"trainer.init_from names module {name!r}; the task's modules are: "
                    f"{', '.join(self.modules)}"
                )
            path = Path(source)
            if path.is_dir():
                # A training checkpoint holds one file per module; an exported model, model.safetensors.
                per_module = path / f"{name}.safetensors"
                path = per_module if per_module.exists() else path / "model.safetensors"
            skip = [p.partition(".")[2] for p in self.config.init_skip if p.partition(".")[0] == name]
            ckpt.load_module_weights(self.modules[name], path, skip=skip)
            kept = f" (fresh: {', '.join(f'{name}.{s}' for s in skip)})" if skip else ""
            self.log(f"initialised {name} from {path}{kept}")

    def _train_loader(self, start: int) -> DataLoader:
        cfg, data = self.config, self.task.train_dataset()
        sampler = StepBatchSampler(
            len(data), cfg.batch_size, cfg.seed, self.dist.rank, self.dist.world_size,
            start_step=start, end_step=cfg.max_steps,
        )  # fmt: skip
        # A private generator: the loader must not draw from the global torch RNG, or a
        # resumed run's random stream would shift.
        return DataLoader(
            data, batch_sampler=sampler, collate_fn=self.task.collate, num_workers=cfg.num_workers,
            pin_memory=self.dist.device.type == "cuda", generator=torch.Generator(),
        )  # fmt: skip

    def _train_step(self, runner: StepRunner, batch: Any, step: int) -> dict[str, float] | None:
        """One step of the task; None if it was skipped for a non-finite loss."""
        self._train_mode()
        runner.stats = {}
        scalars: dict[str, float] | None
        try:
            with self._autocast():
                scalars = self.task.train_step(batch, step, runner)
            self.bad_steps = 0
        except NonFiniteLoss as exc:
            self.bad_steps += 1
            self.log(
                f"step {step}: {exc}; step skipped "
                f"({self.bad_steps} in a row, stopping at {self.config.max_bad_steps})"
            )
            if self.bad_steps >= self.config.max_bad_steps:
                raise TrainingDiverged(
                    f"stopped at step {step}: {self.bad_steps} consecutive steps with non-finite "
                    f"losses (trainer.max_bad_steps={self.config.max_bad_steps}); last: {exc}. "
                    "Lower the learning rate or check the data, then resume from the last checkpoint."
                ) from exc
            scalars = None
        runner.zero_grad()
        # The schedule follows the step count, skipped steps included.
        with warnings.catch_warnings():
            # A skipped first step would make torch warn about the call order.
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
            for s in self.schedulers.values():
                s.step()
        return scalars

    def fit(self, resume: bool = False) -> TrainResult:
        """Train until ``max_steps``; with ``resume``, continue from the latest checkpoint
        in ``out_dir/checkpoints`` (starting fresh if there is none)."""
        cfg = self.config
        self.dist = setup_distributed(cfg.device)
        self.writer, self.log, bar = None, RunLog(None), None
        try:
            start, loaded = self._start(resume)
            runner = StepRunner(
                self.wrapped, self.optimizers, self.params, self.grad_clip, self.scalers,
                self.dist, self.amp_dtype is not None,
            )  # fmt: skip
            loader = self._train_loader(start)
            if self.dist.is_main and cfg.progress:
                bar = tqdm(total=cfg.max_steps, initial=start, desc="train", dynamic_ncols=True)
            result = TrainResult(start_step=start, step=start, skipped_steps=0, checkpoint=loaded)
            if start >= cfg.max_steps:
                self.log(f"already at step {start} >= max_steps {cfg.max_steps}: nothing to train")
            window: dict[str, list[float]] = {}
            window_start = tick = time.perf_counter()
            step_time, items_per_step = 0.0, cfg.batch_size * self.dist.world_size
            last_valid = last_saved = start
            for step, batch in enumerate(loader, start=start):
                scalars = self._train_step(runner, to_device(batch, self.dist.device), step)
                if scalars is None:
                    result.skipped_steps += 1
                    scalars = {}
                done = result.step = step + 1
                now = time.perf_counter()
                step_time = 0.9 * step_time + 0.1 * (now - tick) if step_time else now - tick
                tick = now
                for key, value in {**scalars, **runner.stats}.items():
                    window.setdefault(key, []).append(float(value))
                if bar is not None:
                    bar.update(1)
                    shown = {k: f"{float(v):.3g}" for k, v in list(scalars.items())[:4]}
                    bar.set_postfix(**shown, items_s=f"{items_per_step / step_time:.1f}")
                if done % cfg.log_every == 0 or done == cfg.max_steps:
                    seconds = now - window_start
                    result.train_metrics = self._log_window(done, window, items_per_step, seconds)
                    window, window_start = {}, now
                if self.valid_data is not None and done % cfg.valid_every == 0:
                    result.valid_metrics, last_valid = self._validate(done), done
                if done % cfg.checkpoint_every == 0:
                    result.checkpoint, last_saved = self._save(done), done
            if result.step > start:
                if self.valid_data is not None and last_valid != result.step:
                    result.valid_metrics = self._validate(result.step)
                if last_saved != result.step:
                    result.checkpoint = self._save(result.step)
            return result
        finally:
            if bar is not None:
                bar.close()
            if self.writer is not None:
                self.writer.close()
            self.log.close()
            if self.dist.owns_group and dist.is_initialized():
                dist.destroy_process_group()

    def _log_window(
        self, step: int, window: dict[str, list[float]], items_per_step: int, seconds: float
    ) -> dict[str, float]:
        """Average the window's scalars over steps and ranks; log them on rank 0."""
        metrics = window_means(self.dist, window)
        if self.dist.is_main:
            steps = max(1, max((len(v) for v in window.values()), default=1))
            lrs = {f"lr/{n}": o.param_groups[0]["lr"] for n, o in self.optimizers.items()}
            speed = items_per_step * steps / max(seconds, 1e-9)
            self.log(
                f"step {step}/{self.config.max_steps} | {format_metrics(metrics)} | "
                f"{format_metrics(lrs)} | {speed:.1f} items/s"
            )
            if self.writer is not None:
                for key, value in {**metrics, **lrs}.items():
                    self.writer.add_scalar(
                        key if key.startswith("lr/") else f"train/{key}", value, step
                    )
                self.writer.add_scalar("perf/items_per_s", speed, step)
        return metrics


def run_training(
    task_factory: Callable[[dict[str, Any]], TrainingTask],
    config_path: str | Path | None,
    overrides: Sequence[str] = (),
    resume: bool = False,
    schema: Mapping[str, type] | None = None,
) -> TrainResult:
    """Load a config, build the task, train: the body of a ``train`` command.

    Args:
        task_factory: builds the task from the config sections (dataclass instances).
        config_path: YAML file; its ``trainer:`` section is a :class:`TrainerConfig`.
        overrides: ``section.key=value`` strings (the ``--set`` options).
        resume: continue from the latest checkpoint of ``trainer.out_dir``.
        schema: the task's sections (e.g. ``{"model": CodecConfig, "data": DataConfig}``).
    """
    schema = dict(schema or {})
    if "trainer" in schema and schema["trainer"] is not TrainerConfig:
        raise ValueError("the 'trainer' section is reserved for TrainerConfig")
    configs = load_config(config_path, overrides, {"trainer": TrainerConfig, **schema})
    # Same initial weights on every rank and in every run with this seed.
    seed_everything(configs["trainer"].seed)
    task = task_factory(configs)
    return Trainer(task, configs["trainer"], run_config=configs).fit(resume=resume)
