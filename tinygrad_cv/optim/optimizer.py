"""Optimizer base: parameter groups, state per parameter, step() and zero_grad() as in torch.optim.

Updates run in place on ``param.data`` with NumPy's in-place operators, in the
parameter's dtype (float32), so a step allocates little and the model holds on
to the same arrays.
"""
from __future__ import annotations

import copy
from typing import Any, Iterable

import numpy as np

from ..tensors import Tensor


class Optimizer:
    """``Optimizer(params, defaults)``: params is an iterable of Tensors, or of dicts (param groups)
    with a "params" entry and per-group options (e.g. {"params": ..., "lr": 0.1})."""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]):
        self.defaults = dict(defaults)
        self.state: dict[int, dict[str, Any]] = {}           # id(param) -> its state
        self.param_groups: list[dict[str, Any]] = []
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group: dict[str, Any]) -> None:
        if "params" not in group:
            raise ValueError(f"a parameter group needs a 'params' entry, got keys {sorted(group)}")
        group = dict(group)
        ps = group["params"]
        ps = [ps] if isinstance(ps, Tensor) else list(ps)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in ps:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__} optimizes Tensors, got {type(p).__name__}")
            if p.dtype.kind != "f":
                raise TypeError(f"{type(self).__name__}: cannot optimize a {p.dtype} tensor of shape {p.shape}")
            if id(p) in seen:
                raise ValueError(f"a parameter of shape {p.shape} appears in more than one parameter group")
            seen.add(id(p))
        group["params"] = ps
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        unknown = set(group) - set(self.defaults) - {"params", "initial_lr"}
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown option(s) {sorted(unknown)} in a parameter group; "
                             f"known: {sorted(self.defaults)}")
        self._check(group)
        self.param_groups.append(group)

    def _check(self, group: dict[str, Any]) -> None:
        """Validate a group's hyperparameters (subclasses name the bad value)."""
        if group.get("lr", 0.0) < 0:
            raise ValueError(f"invalid learning rate: {group['lr']}")
        if group.get("weight_decay", 0.0) < 0:
            raise ValueError(f"invalid weight_decay: {group['weight_decay']}")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (PyTorch's default sets them to None)."""
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad = np.zeros_like(p.data)

    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.data
                if grad.dtype != p.data.dtype:
                    grad = grad.astype(p.data.dtype)
                self._update(p.data, grad, group, self.state.setdefault(id(p), {}))

    def _update(self, param: np.ndarray, grad: np.ndarray, group: dict[str, Any], state: dict[str, Any]) -> None:
        raise TypeError(f"{type(self).__name__} does not define _update(param, grad, group, state)")

    # -- saving ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]} like torch."""
        index, groups = {}, []
        for g in self.param_groups:
            entry = {k: v for k, v in g.items() if k != "params"}
            entry["params"] = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                entry["params"].append(index[id(p)])
            groups.append(entry)
        state = {index[k]: copy.deepcopy(v) for k, v in self.state.items() if k in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)):
            raise ValueError(f"{type(self).__name__}.load_state_dict: group sizes "
                             f"{[len(g['params']) for g in groups]} differ from this optimizer's "
                             f"{[len(g['params']) for g in self.param_groups]}")
        params = [p for g in self.param_groups for p in g["params"]]
        order = [i for g in groups for i in g["params"]]
        self.state = {id(params[pos]): copy.deepcopy(state_dict["state"][i])
                      for pos, i in enumerate(order) if i in state_dict["state"]}
        for mine, saved in zip(self.param_groups, groups):
            mine.update({k: v for k, v in saved.items() if k != "params"})

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(g.items()) if k != "params"]
        return "\n".join(lines + [")"])
