"""CPU speed choices of `tunewise.train.fast` that must not change what is learned."""

from __future__ import annotations

import pytest


def test_scoring_only_labelled_positions_gives_the_same_loss_and_gradients(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    from tunewise.train.fast import score_labelled_positions_only

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    ids = torch.randint(0, model.config.vocab_size, (2, 12))
    labels = torch.full_like(ids, -100)
    labels[:, -3:] = ids[:, -3:]  # the reply's tokens, as assistant-only loss leaves them

    def loss_and_gradients():
        model.zero_grad()
        loss = model(input_ids=ids, labels=labels, fused_lm_head=True).loss
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    try:
        score_labelled_positions_only(False)
        every_position = loss_and_gradients()
        assert score_labelled_positions_only(True)  # TRL's layout is the one the patch knows
        labelled_only = loss_and_gradients()
    finally:
        score_labelled_positions_only(True)  # as every training run leaves it
    assert labelled_only[0] == pytest.approx(every_position[0], rel=1e-5)
    assert len(labelled_only[1]) == len(every_position[1]) > 0
    for a, b in zip(labelled_only[1], every_position[1]):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)
