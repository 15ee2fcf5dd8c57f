"""Learning-rate schedules and optimisers; the paper's recipe is the default."""
from __future__ import annotations

import keras

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("exponential", "cosine", "constant")


def build_learning_rate(schedule: str, learning_rate: float, decay_steps: int,
                        decay_rate: float, total_steps: int, warmup_steps: int = 0):
    """Paper default: 0.001 x 0.98 every 50k updates, staircase."""
    if schedule == "exponential":
        lr = keras.optimizers.schedules.ExponentialDecay(
            learning_rate, decay_steps=decay_steps, decay_rate=decay_rate, staircase=True)
    elif schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(
            learning_rate if warmup_steps == 0 else 0.0,
            decay_steps=max(1, total_steps - warmup_steps),
            warmup_target=learning_rate if warmup_steps else None,
            warmup_steps=warmup_steps)
    elif schedule == "constant":
        return learning_rate
    else:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {SCHEDULES}")
    return lr


def build_optimizer(name: str, learning_rate, momentum: float = 0.0,
                    weight_decay: float = 0.0, mixed_precision: str = "none"):
    if name == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate, momentum=momentum)
    elif name == "adam":
        optimizer = keras.optimizers.Adam(learning_rate)
    elif name == "adamw":
        optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
    else:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {OPTIMIZERS}")
    if mixed_precision == "mixed_float16":
        # float16 gradients underflow without dynamic loss scaling; bfloat16 has
        # float32's exponent range and needs none.
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def current_learning_rate(optimizer) -> float:
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    lr = inner.learning_rate
    return float(lr.numpy() if hasattr(lr, "numpy") else lr)
