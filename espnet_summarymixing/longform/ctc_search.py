"""CTC decoding over a whole recording's frames: greedy and prefix beam search, each token with
the encoder frame where it is emitted (the start of the timing that :mod:`.align` refines).

Both read the frame posteriors once, left to right, so a recording of any length costs time
linear in its frames and memory of the beam. An optional language model joins the prefix beam
search by shallow fusion: ``lm(prefix) -> log-probabilities of the next token`` (for instance
ESPnet's LM, :func:`espnet_lm_scorer`), added with ``lm_weight`` whenever a prefix grows by a token.
"""

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import torch

__all__ = ["Hypothesis", "greedy", "prefix_beam_search", "espnet_lm_scorer"]

LMScorer = Callable[[Tuple[int, ...]], torch.Tensor]
#: Frame log-probabilities (frames, vocabulary): one tensor, or consecutive blocks of frames (so that
#: a long recording's posteriors need never exist all at once).
LogProbs = Union[torch.Tensor, Iterable[torch.Tensor]]


@dataclass
class Hypothesis:
    """Token ids (blank and repeats removed), the frame of each token's emission, and the score
    (log-probability of the best path for greedy, of the prefix, LM included, for beam search)."""

    tokens: List[int] = field(default_factory=list)
    frames: List[int] = field(default_factory=list)
    score: float = 0.0


def _blocks(log_probs: LogProbs, blank: int) -> Iterator[torch.Tensor]:
    for block in [log_probs] if isinstance(log_probs, torch.Tensor) else log_probs:
        if block.dim() != 2:
            raise ValueError(f"log_probs must be (frames, vocabulary), got shape {tuple(block.shape)}")
        if not 0 <= blank < block.size(1):
            raise ValueError(f"blank={blank} is not a token of a {block.size(1)}-token vocabulary")
        yield block.detach().float().cpu()


def greedy(log_probs: LogProbs, blank: int = 0) -> Hypothesis:
    """Best token per frame, repeats merged and blanks removed (frames of any number)."""
    best, ids = [], []
    for block in _blocks(log_probs, blank):
        value, index = block.max(dim=1)
        best.append(value)
        ids.append(index)
    if not ids or sum(i.numel() for i in ids) == 0:
        return Hypothesis()
    best, ids = torch.cat(best), torch.cat(ids)
    change = torch.ones_like(ids, dtype=torch.bool)
    change[1:] = ids[1:] != ids[:-1]
    emit = change & (ids != blank)
    frames = emit.nonzero().squeeze(1)
    return Hypothesis(ids[frames].tolist(), frames.tolist(), float(best.double().sum()))


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


def prefix_beam_search(
    log_probs: LogProbs,
    beam: int = 10,
    blank: int = 0,
    lm: Optional[LMScorer] = None,
    lm_weight: float = 0.0,
    token_threshold: float = math.log(1e-4),
    max_tokens_per_frame: int = 8,
) -> Hypothesis:
    """CTC prefix beam search: the ``beam`` best label prefixes, each scored by the sum over its
    CTC paths (ending in blank / in its last token) plus ``lm_weight`` times the LM's log-probability.

    Per frame only the tokens with log-probability above ``token_threshold`` (at most
    ``max_tokens_per_frame`` of them, blank always) extend a prefix; frames where blank takes all the
    mass cost one update per prefix. Each token's frame is the one where it was most probable along
    the prefix's paths (its spike), not the frame where the prefix first appeared: a token first
    proposed with a tiny probability deep in a pause would otherwise be timed there.
    """
    if beam < 1:
        raise ValueError(f"beam={beam} must be at least 1")
    if lm is not None and lm_weight == 0.0:
        lm = None
    neg = -math.inf
    # prefix -> [log p(ending in blank), log p(ending in its last token)]
    beams: Dict[Tuple[int, ...], List[float]] = {(): [0.0, neg]}
    # prefix -> (frames of its tokens, log-probability of its last token at the last of them)
    frames_of: Dict[Tuple[int, ...], Tuple[Tuple[int, ...], float]] = {(): ((), neg)}
    lm_score: Dict[Tuple[int, ...], float] = {(): 0.0}
    lm_cache: Dict[Tuple[int, ...], torch.Tensor] = {}

    def lm_next(prefix: Tuple[int, ...]) -> torch.Tensor:
        if prefix not in lm_cache:
            lm_cache[prefix] = lm(prefix)
        return lm_cache[prefix]

    rows = (row for block in _blocks(log_probs, blank) for row in block)
    for t, row in enumerate(rows):
        top_values, top_ids = row.topk(min(max_tokens_per_frame, row.numel()))
        candidates = [(int(c), float(v)) for c, v in zip(top_ids, top_values) if v > token_threshold and c != blank]
        p_blank = float(row[blank])
        nxt: Dict[Tuple[int, ...], List[float]] = {}
        nxt_frames: Dict[Tuple[int, ...], Tuple[Tuple[int, ...], float]] = {}

        def add(prefix, which, value):
            entry = nxt.setdefault(prefix, [neg, neg])
            entry[which] = _logaddexp(entry[which], value)

        def timed(prefix, frames, peak):
            if prefix not in nxt_frames or peak > nxt_frames[prefix][1]:
                nxt_frames[prefix] = (frames, peak)

        for prefix, (pb, pnb) in beams.items():
            total = _logaddexp(pb, pnb)
            add(prefix, 0, total + p_blank)  # stays, ends in blank
            frames, peak = frames_of[prefix]
            timed(prefix, frames, peak)
            last = prefix[-1] if prefix else None
            if last is not None:
                p_last = float(row[last])
                add(prefix, 1, pnb + p_last)  # repeat of the last token, merged
                if pnb > neg and p_last > peak:  # the last token's spike is here
                    timed(prefix, frames[:-1] + (t,), p_last)
            for c, p in candidates:
                extended = prefix + (c,)
                # after the same token, only a path through blank starts a new token
                value = (pb if c == last else total) + p
                add(extended, 1, value)
                timed(extended, frames + (t,), p)
                if extended not in lm_score:
                    if lm is not None:
                        lm_score[extended] = lm_score[prefix] + lm_weight * float(lm_next(prefix)[c])
                    else:
                        lm_score[extended] = 0.0
        ranked = sorted(nxt.items(), key=lambda kv: _logaddexp(*kv[1]) + lm_score[kv[0]], reverse=True)
        beams = dict(ranked[:beam])
        frames_of = {prefix: nxt_frames[prefix] for prefix in beams}
        if t % 256 == 255:  # forget the bookkeeping of prefixes that left the beam
            keep = set(beams)
            lm_score = {p: s for p, s in lm_score.items() if p in keep}
            lm_cache = {p: s for p, s in lm_cache.items() if p in keep}
    best, (pb, pnb) = max(beams.items(), key=lambda kv: _logaddexp(*kv[1]) + lm_score[kv[0]])
    return Hypothesis(list(best), list(frames_of[best][0]), _logaddexp(pb, pnb) + lm_score[best])


def espnet_lm_scorer(lm_model, sos_eos: int, device: str = "cpu", context: int = 64,
                     cache_size: int = 4096) -> LMScorer:
    """An :data:`LMScorer` from an ESPnet language model (``ESPnetLanguageModel`` or its ``.lm``,
    RNN or Transformer): the log-probabilities of the next token after ``<sos>`` and the prefix.

    Each prefix is scored from its parent's LM state (ESPnet's ``score(y, state, x)``), kept for the
    ``cache_size`` most recent prefixes. An RNN LM carries its state over the whole transcript; a
    Transformer LM (whose state grows with the prefix) sees the last ``context`` tokens, which bounds
    its cost on an hour-long transcript; a prefix whose parent state is gone is rescored from them.
    """
    from collections import OrderedDict

    lm = getattr(lm_model, "lm", lm_model)
    recurrent = type(lm).__name__ == "SequentialRNNLM"
    states: "OrderedDict[Tuple[int, ...], Tuple[torch.Tensor, object]]" = OrderedDict()

    def step(tokens: Sequence[int], state) -> Tuple[torch.Tensor, object]:
        y = torch.tensor([sos_eos, *tokens], dtype=torch.long, device=device)
        with torch.no_grad():
            logp, state = lm.score(y, state, None)
        return logp.float().cpu(), state

    def score(prefix: Tuple[int, ...]) -> torch.Tensor:
        prefix = tuple(prefix)
        if prefix in states:
            states.move_to_end(prefix)
            return states[prefix][0]
        if prefix and prefix[:-1] in states and (recurrent or len(prefix) <= context):
            logp, state = step(prefix, states[prefix[:-1]][1])
        else:  # from the last `context` tokens, one at a time
            window = prefix[-context:] if prefix else ()
            logp, state = step((), None)
            for i in range(len(window)):
                logp, state = step(window[:i + 1], state)
        states[prefix] = (logp, state)
        if len(states) > cache_size:
            states.popitem(last=False)
        return logp

    return score
