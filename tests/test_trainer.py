"""The generic trainer, on a toy two-optimizer task: regression MLP with dropout plus a
small critic stepped before it (the shape of a GAN step), random crops drawn from item seeds."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from torch import nn

from codec.training import checkpoint as ckpt
from codec.training.recipe import ConfigError, dataclass_from_dict, dataclass_to_dict, load_config
from codec.training.trainer import (
    StepBatchSampler,
    StepRunner,
    Trainer,
    TrainerConfig,
    TrainingDiverged,
    TrainingTask,
    lr_factor,
    run_training,
    seed_everything,
    validation_keys,
)

REPO = Path(__file__).resolve().parents[1]


class ToyDataset(torch.utils.data.Dataset):
    """Items are random crops of fixed sequences: x [crop, 4] -> y [crop, 1]."""

    def __init__(self, n: int = 48, length: int = 24, crop: int = 16) -> None:
        gen = torch.Generator().manual_seed(1234)
        w = torch.randn(4, 1, generator=gen)
        self.x = torch.randn(n, length, 4, generator=gen)
        self.y = torch.tanh(self.x @ w)
        self.crop = crop

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, seed = key
        gen = torch.Generator().manual_seed(seed)
        start = int(torch.randint(0, self.x.shape[1] - self.crop + 1, (1,), generator=gen))
        return self.x[index, start : start + self.crop], self.y[index, start : start + self.crop]


class Interrupted(Exception):
    pass


class ToyTask(TrainingTask):
    def __init__(self, nan_steps: set[int] | None = None, interrupt_at: int | None = None) -> None:
        self.net = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Dropout(0.2), nn.Linear(32, 1))
        self.critic = nn.Linear(1, 1)
        self.nan_steps = nan_steps or set()
        self.interrupt_at = interrupt_at
        self.losses: list[float] = []
        self.params_at_step: dict[int, list[torch.Tensor]] = {}

    def modules(self) -> dict[str, nn.Module]:
        return {"net": self.net, "critic": self.critic}

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"critic": list(self.critic.parameters()), "net": list(self.net.parameters())}

    def train_dataset(self) -> ToyDataset:
        return ToyDataset()

    def valid_dataset(self) -> ToyDataset:
        return ToyDataset(n=12)

    def train_step(self, batch, step: int, opt: StepRunner) -> dict[str, float]:
        if step == self.interrupt_at:
            raise Interrupted(step)
        self.params_at_step[step] = [p.detach().clone() for p in self.net.parameters()]
        x, y = batch
        pred = opt.module("net")(x)
        critic_loss = (opt.module("critic")(pred.detach()) - y).pow(2).mean()
        opt.step("critic", critic_loss)
        loss = (pred - y).pow(2).mean() + 0.01 * opt.module("critic")(pred).mean()
        if step in self.nan_steps:
            loss = loss * float("nan")
        opt.step("net", loss)
        self.losses.append(loss.item())
        return {"loss": loss.item(), "critic": critic_loss.item()}

    def validate(self, batches, step: int) -> dict[str, float]:
        errors = [(self.net(x) - y).pow(2).mean().item() for x, y in batches]
        return {"mse": sum(errors) / len(errors)}


def toy_config(out_dir: Path, **kw) -> TrainerConfig:
    base = dict(
        out_dir=str(out_dir),
        max_steps=4,
        batch_size=4,
        num_workers=0,
        seed=3,
        lr=1e-2,
        warmup_steps=1,
        lr_decay="cosine",
        log_every=2,
        checkpoint_every=2,
        valid_every=0,
        valid_batches=2,
        tensorboard=False,
        progress=False,
        device="cpu",
    )
    base.update(kw)
    return TrainerConfig(**base)


def params_of(task: ToyTask) -> list[torch.Tensor]:
    return [p.detach().clone() for m in task.modules().values() for p in m.parameters()]


def make_task(init_seed: int = 0, **kw) -> ToyTask:
    seed_everything(init_seed)
    return ToyTask(**kw)


def test_loss_decreases_and_logs(tmp_path: Path) -> None:
    task = make_task()
    cfg = toy_config(
        tmp_path,
        max_steps=60,
        log_every=20,
        checkpoint_every=30,
        valid_every=30,
        tensorboard=True,
        keep_checkpoints=1,
    )
    result = Trainer(task, cfg).fit()
    first, last = sum(task.losses[:5]) / 5, sum(task.losses[-5:]) / 5
    assert last < 0.5 * first, (first, last)
    assert result.step == 60 and result.skipped_steps == 0
    assert set(result.train_metrics) >= {"loss", "critic", "grad_norm/net", "grad_norm/critic"}
    assert result.valid_metrics["mse"] < 0.5
    log = (tmp_path / "train.log").read_text()
    assert "step 20/60" in log and "items/s" in log and "valid (2 batches)" in log
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    # keep_checkpoints=1: only the final checkpoint remains, and latest points to it.
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "checkpoints")] == [60]
    assert ckpt.find_latest_checkpoint(tmp_path / "checkpoints").name == "step_0000060"


def test_freeze_keeps_parts_fixed_and_in_eval_mode(tmp_path: Path) -> None:
    task = make_task()
    first, last = task.net[0], task.net[3]
    before_first = [p.detach().clone() for p in first.parameters()]
    before_last = [p.detach().clone() for p in last.parameters()]
    trainer = Trainer(task, toy_config(tmp_path, freeze=["net.0"], valid_every=2))
    trainer.fit()
    assert all(torch.equal(a, b) for a, b in zip(before_first, first.parameters(), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(before_last, last.parameters(), strict=True))
    assert not first.training and task.net[2].training  # dropout of the trained part stays on
    assert not any(p.requires_grad for p in first.parameters())


def test_freeze_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="modules are: net, critic"):
        Trainer(make_task(), toy_config(tmp_path / "a", freeze=["nope"])).fit()
    with pytest.raises(ValueError, match="no submodule 'encoder'.*children: 0, 1, 2, 3"):
        Trainer(make_task(), toy_config(tmp_path / "b", freeze=["net.encoder"])).fit()
    with pytest.raises(ValueError, match="leaves optimizer 'net' nothing to train"):
        Trainer(make_task(), toy_config(tmp_path / "c", freeze=["net"])).fit()


def test_resume_is_bit_identical(tmp_path: Path) -> None:
    full = make_task()
    Trainer(full, toy_config(tmp_path / "full", valid_every=1)).fit()

    # The same run, killed during step 2 (after its step-2 checkpoint), then resumed by a
    # fresh process whose modules start from other weights and whose loader uses workers.
    part = make_task(interrupt_at=2)
    with pytest.raises(Interrupted):
        Trainer(part, toy_config(tmp_path / "part", valid_every=1)).fit()
    resumed = make_task(init_seed=99)
    result = Trainer(resumed, toy_config(tmp_path / "part", num_workers=2)).fit(resume=True)
    assert result.start_step == 2 and result.step == 4
    assert full.losses[2:] == resumed.losses
    for a, b in zip(params_of(full), params_of(resumed), strict=True):
        assert torch.equal(a, b)
    # Optimizer moments were restored too, not just the weights.
    sa = ckpt.load_training_state(tmp_path / "full/checkpoints/step_0000004/trainer_state.pt")
    sb = ckpt.load_training_state(tmp_path / "part/checkpoints/step_0000004/trainer_state.pt")
    for name in ("net", "critic"):
        for k, v in sa["optimizers"][name]["state"].items():
            assert torch.equal(v["exp_avg_sq"], sb["optimizers"][name]["state"][k]["exp_avg_sq"])


def test_interrupted_checkpoint_write_keeps_previous(tmp_path: Path, monkeypatch) -> None:
    task = make_task()
    Trainer(task, toy_config(tmp_path, max_steps=2)).fit()
    root = tmp_path / "checkpoints"
    saved = params_of(task)
    real_save = ckpt.save_training_state

    def dying_save(state, path):
        Path(path).write_bytes(b"partial")  # a half-written file, then the failure
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_training_state", dying_save)
    with pytest.raises(OSError, match="disk full"):
        Trainer(make_task(), toy_config(tmp_path, max_steps=4)).fit(resume=True)
    monkeypatch.setattr(ckpt, "save_training_state", real_save)

    assert (root / ckpt.LATEST_FILE).read_text().strip() == "step_0000002"
    assert [s for s, _ in ckpt.list_checkpoints(root)] == [2]
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp-")]
    # A write killed outright leaves its temporary folder behind: it is never picked up.
    (root / ".tmp-step_0000006-abc").mkdir()
    (root / ".tmp-step_0000006-abc" / "net.safetensors").write_bytes(b"junk")
    assert ckpt.find_latest_checkpoint(root) == root / "step_0000002"

    fresh = make_task(init_seed=5)
    for name, module in fresh.modules().items():
        ckpt.load_module_weights(module, root / "step_0000002" / f"{name}.safetensors")
    for a, b in zip(saved, params_of(fresh), strict=True):
        assert torch.equal(a, b)
    result = Trainer(make_task(), toy_config(tmp_path, max_steps=4)).fit(resume=True)
    assert result.start_step == 2 and result.checkpoint == root / "step_0000004"
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp-")]


def test_non_finite_loss_skips_then_stops(tmp_path: Path) -> None:
    task = make_task(nan_steps={1})
    result = Trainer(task, toy_config(tmp_path / "a")).fit()
    assert result.step == 4 and result.skipped_steps == 1
    # The net's update of step 1 was skipped: it enters step 2 with step 1's weights.
    for a, b in zip(task.params_at_step[1], task.params_at_step[2], strict=True):
        assert torch.equal(a, b)
    assert not all(
        torch.equal(a, b)
        for a, b in zip(task.params_at_step[2], task.params_at_step[3], strict=True)
    )
    log = (tmp_path / "a" / "train.log").read_text()
    assert "step 1: non-finite loss for optimizer 'net'" in log and "step skipped" in log

    task = make_task(nan_steps=set(range(2, 100)))
    with pytest.raises(TrainingDiverged, match="3 consecutive steps"):
        Trainer(task, toy_config(tmp_path / "b", max_steps=20, max_bad_steps=3)).fit()
    # It stopped at step 4 (the third bad one), not after 20 steps.
    assert len(task.params_at_step) == 5


def test_runner_errors_name_the_problem(tmp_path: Path) -> None:
    class BadTask(ToyTask):
        def train_step(self, batch, step, opt):
            opt.step("generator", self.net(batch[0]).mean())
            return {}

    with pytest.raises(KeyError, match="no optimizer 'generator'.*critic, net"):
        Trainer(BadTask(), toy_config(tmp_path)).fit()

    class StrayParamTask(ToyTask):
        def param_groups(self):
            return {"net": [*self.net.parameters(), nn.Parameter(torch.zeros(2))]}

    with pytest.raises(ValueError, match="belongs to none of the task's modules"):
        Trainer(StrayParamTask(), toy_config(tmp_path)).fit()
    with pytest.raises(ValueError, match="missing: \\['critic'\\]"):
        Trainer(ToyTask(), toy_config(tmp_path, grad_clip={"net": 1.0})).fit()


def test_data_order_is_pure_sharded_and_covers_epochs() -> None:
    n, b = 10, 3
    one = StepBatchSampler(n, 2 * b, seed=7, end_step=6)
    r0 = StepBatchSampler(n, b, seed=7, rank=0, world_size=2, end_step=6)
    r1 = StepBatchSampler(n, b, seed=7, rank=1, world_size=2, end_step=6)
    for step in range(6):
        # Two ranks together read exactly the global batch of a single process.
        assert r0.keys(step) + r1.keys(step) == one.keys(step)
        assert StepBatchSampler(n, b, seed=7, rank=1, world_size=2).keys(step) == r1.keys(step)
    flat = [k for keys in one for k in keys]
    assert sorted(i for i, _ in flat[:n]) == list(range(n))  # epoch 0 sees each item once
    assert sorted(i for i, _ in flat[n : 2 * n]) == list(range(n))
    assert [i for i, _ in flat[:n]] != [i for i, _ in flat[n : 2 * n]]  # reshuffled
    seeds = {i: s for i, s in flat[:n]}
    assert all(seeds[i] != s for i, s in flat[n : 2 * n])  # new crops each epoch
    assert list(StepBatchSampler(n, b, seed=7, start_step=4, end_step=6)) == [
        one_b for one_b in (StepBatchSampler(n, b, seed=7).keys(s) for s in (4, 5))
    ]
    assert StepBatchSampler(n, b, seed=8).keys(0) != StepBatchSampler(n, b, seed=7).keys(0)
    valid = validation_keys(5, 2, 4, seed=1)
    assert [len(v) for v in valid] == [2, 2, 1] and valid == validation_keys(5, 2, 4, seed=1)


def test_lr_schedule() -> None:
    cfg = TrainerConfig(max_steps=110, warmup_steps=10, lr_final_ratio=0.1, lr_decay="cosine")
    assert lr_factor(0, cfg) == pytest.approx(0.1) and lr_factor(9, cfg) == pytest.approx(1.0)
    assert lr_factor(10, cfg) == pytest.approx(1.0)
    assert lr_factor(60, cfg) == pytest.approx(0.55)
    assert lr_factor(110, cfg) == pytest.approx(0.1)
    cfg.lr_decay = "exponential"
    assert lr_factor(60, cfg) == pytest.approx(0.1**0.5)
    cfg.lr_decay = "constant"
    assert lr_factor(100, cfg) == 1.0


@dataclass
class Inner:
    width: int = 8
    ratio: float = 0.5


@dataclass
class ModelCfg:
    name: str = "toy"
    layers: tuple[int, ...] = (1, 2)
    inner: Inner = field(default_factory=Inner)
    dropout: float | None = None


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def test_config_file_and_overrides(tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path / "c.yaml",
        """
        trainer:
          lr: 1e-3          # a string to PyYAML; read as a float
          betas: [0.5, 0.9]
          grad_clip: {gen: 1.0, disc: 10}
        model:
          inner: {width: 16}
        """,
    )
    schema = {"trainer": TrainerConfig, "model": ModelCfg}
    cfg = load_config(
        path,
        [
            "trainer.max_steps=7",
            "model.inner.ratio=2",
            "model.layers=[3, 4, 5]",
            "trainer.lr_decay=constant",
            "model.dropout=null",
            "trainer.grad_clip.gen=0.5",
        ],
        schema,
    )
    t, m = cfg["trainer"], cfg["model"]
    assert t.lr == 1e-3 and t.betas == (0.5, 0.9) and t.max_steps == 7 and t.lr_decay == "constant"
    assert t.grad_clip == {"gen": 0.5, "disc": 10.0}
    assert m.inner == Inner(width=16, ratio=2.0) and m.layers == (3, 4, 5) and m.dropout is None
    assert dataclass_from_dict(ModelCfg, dataclass_to_dict(m)) == m
    assert load_config(None, [], schema)["model"] == ModelCfg()


def test_config_errors_list_valid_keys(tmp_path: Path) -> None:
    schema = {"trainer": TrainerConfig, "model": ModelCfg}
    bad_key = write_yaml(tmp_path / "a.yaml", "trainer:\n  max_stepz: 3\n")
    with pytest.raises(
        ConfigError, match=r"unknown key 'trainer.max_stepz'.*valid keys: out_dir, max_steps"
    ):
        load_config(bad_key, [], schema)
    with pytest.raises(
        ConfigError,
        match=r"unknown key 'model.inner.depth'.*valid keys of model.inner \(Inner\): width, ratio",
    ):
        load_config(None, ["model.inner.depth=3"], schema)
    with pytest.raises(
        ConfigError, match=r"unknown section 'optim'.*valid sections: trainer, model"
    ):
        load_config(write_yaml(tmp_path / "b.yaml", "optim: {}\n"), [], schema)
    with pytest.raises(ConfigError, match=r"trainer.max_steps: expected an integer, got 'many'"):
        load_config(None, ["trainer.max_steps=many"], schema)
    with pytest.raises(ConfigError, match=r"trainer.progress: expected true or false, got 1.0"):
        load_config(None, ["trainer.progress=1.0"], schema)
    with pytest.raises(ConfigError, match=r"trainer.lr_decay: 'linear' is not one of"):
        load_config(None, ["trainer.lr_decay=linear"], schema)
    with pytest.raises(ConfigError, match=r"trainer: max_steps must be >= 1"):
        load_config(None, ["trainer.max_steps=0"], schema)
    with pytest.raises(ConfigError, match="not of the form section.key=value"):
        load_config(None, ["trainer.lr"], schema)


def test_run_training_from_config_file(tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path / "run.yaml",
        f"""
        trainer: {{out_dir: {tmp_path / "run"}, max_steps: 3, batch_size: 4, num_workers: 0,
                   log_every: 1, checkpoint_every: 10, valid_every: 0, tensorboard: false,
                   progress: false, device: cpu}}
        model: {{inner: {{width: 5}}}}
        """,
    )
    seen = {}

    def factory(configs):
        seen.update(configs)
        return ToyTask()

    result = run_training(factory, path, ["trainer.max_steps=2"], schema={"model": ModelCfg})
    assert result.step == 2 and seen["model"].inner.width == 5
    saved = load_config(
        tmp_path / "run/checkpoints/step_0000002/config.yaml",
        [],
        {"trainer": TrainerConfig, "model": ModelCfg},
    )
    assert saved["trainer"].max_steps == 2 and saved["model"] == seen["model"]


TORCHRUN_SCRIPT = """
import os, sys, torch
sys.path.insert(0, {tests!r})
from test_trainer import make_task, toy_config
from codec.training.trainer import Trainer

rank = int(os.environ["RANK"])
task = make_task(init_seed=100 + rank)  # different initial weights on each rank
result = Trainer(task, toy_config(sys.argv[1], max_steps=3, checkpoint_every=2, valid_every=3)).fit()
torch.save({{"params": [p.detach() for m in task.modules().values() for p in m.parameters()],
            "step": result.step, "valid": result.valid_metrics}}, f"{{sys.argv[1]}}/rank{{rank}}.pt")
"""


def test_torchrun_two_processes(tmp_path: Path) -> None:
    script = tmp_path / "train_ddp.py"
    script.write_text(TORCHRUN_SCRIPT.format(tests=str(Path(__file__).parent)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(script),
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    r0 = torch.load(tmp_path / "run/rank0.pt")
    r1 = torch.load(tmp_path / "run/rank1.pt")
    assert r0["step"] == r1["step"] == 3
    # DDP broadcast rank 0's weights at start and all-reduced every gradient since.
    for a, b in zip(r0["params"], r1["params"], strict=True):
        assert torch.equal(a, b)
    assert r0["valid"] == r1["valid"] and "mse" in r0["valid"]
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "run/checkpoints")] == [2, 3]
    state = ckpt.load_training_state(tmp_path / "run/checkpoints/step_0000003/trainer_state.pt")
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    assert "step 3/3" in (tmp_path / "run/train.log").read_text()
