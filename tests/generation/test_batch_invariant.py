"""The batch-invariant op mode on its own: same values as torch, computed one sample at a time."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from generation.backends.batch_invariant import BatchInvariantMode, batch_invariant  # noqa: E402


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


class Counting(torch.overrides.TorchFunctionMode):
    """Records the batch size each op is called with, below the batch-invariant mode."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple[str, int]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in (F.linear, F.conv2d, F.group_norm, F.scaled_dot_product_attention):
            self.calls.append((func.__name__, args[0].shape[0]))
        return func(*args, **(kwargs or {}))


CASES = {
    "linear": lambda x: F.linear(x, rand(16, 8, seed=1), rand(16, seed=2)),
    "linear_2d": lambda x: F.linear(x.flatten(1), rand(4, 40, seed=1)),
    "conv2d": lambda x: F.conv2d(x.reshape(-1, 2, 4, 5), rand(3, 2, 3, 3, seed=3), padding=1),
    "group_norm": lambda x: F.group_norm(x.reshape(-1, 4, 2, 5), 2, rand(4, seed=4), None),
    "layer_norm": lambda x: F.layer_norm(x, (8,)),
    "baddbmm_broadcast_bias": lambda x: torch.baddbmm(rand(1, 5, 5, seed=5), x, x.transpose(1, 2)),
    # A 2-d bias whose first side happens to equal the batch is still shared, not split.
    "baddbmm_2d_bias": lambda x: torch.baddbmm(
        rand(6, 6, seed=6), x.transpose(1, 2)[:, :6], x[:, :, :6]
    ),
    "baddbmm_batched_bias": lambda x: torch.baddbmm(x[:, :, :5], x, x.transpose(1, 2)),
    "bmm": lambda x: torch.bmm(x, x.transpose(1, 2)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_op_gives_torchs_values_and_each_sample_its_alone_value(name):
    op = CASES[name]
    x = rand(6, 5, 8, seed=9)
    plain = op(x)

    with batch_invariant():
        batched = op(x)
        alone = torch.cat([op(x[i : i + 1]) for i in range(6)])

    assert batched.shape == plain.shape
    torch.testing.assert_close(batched, plain)
    assert torch.equal(batched, alone)


def test_attention_splits_a_per_sample_mask_and_broadcasts_a_shared_one():
    q, k, v = rand(3, 2, 7, 4, seed=1), rand(3, 2, 9, 4, seed=2), rand(3, 2, 9, 4, seed=3)
    per_sample = rand(3, 1, 7, 9, seed=4).gt(0) | torch.eye(7, 9, dtype=torch.bool)
    shared = torch.ones(7, 9, dtype=torch.bool).tril()

    for mask in (per_sample, shared):
        plain = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        with batch_invariant():
            batched = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            positional = F.scaled_dot_product_attention(q, k, v, mask)
        torch.testing.assert_close(batched, plain)
        assert torch.equal(batched, positional)


def test_the_ops_reach_the_kernels_one_sample_at_a_time_and_the_rest_is_untouched():
    x = rand(4, 3, 8)
    counting = Counting()
    with counting, BatchInvariantMode():
        F.linear(x, rand(2, 8))
        y = x * 2 + 1  # element-wise: no split

    assert counting.calls == [("linear", 1)] * 4
    assert torch.equal(y, x * 2 + 1)


def test_turned_off_it_changes_nothing():
    counting = Counting()
    with counting, batch_invariant(False):
        F.linear(rand(4, 3, 8), rand(2, 8))

    assert counting.calls == [("linear", 4)]
