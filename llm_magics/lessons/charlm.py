"""A character-level language model on a real text, trained in under a minute on a CPU.

The text is Ambrose Bierce's *The Devil's Dictionary* (1911, public domain), as Debian's
`dict-devil` package ships it (`data/devils_dictionary.txt.gz`, the body of
/usr/share/dictd/devil.dict.dz, version 1.0-13.1). 383k characters, 84 distinct.

    >>> from llm_magics.lessons import charlm
    >>> run = charlm.train(kind="lstm", steps=300)          # ~20 s on 2 cores
    >>> run.val_bits_per_char, run.unigram_bits_per_char    # ~2.3 vs ~4.4
    >>> run.sample("CAT, n. ")

Bits per character is the cross-entropy in base 2: what a perfect compressor built from the
model would spend per character. A model that only knew letter frequencies (the unigram
baseline) needs about 4.4 bits; every bit below that is something the model learnt.
"""

from __future__ import annotations

import gzip
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).parent / "data" / "devils_dictionary.txt.gz"


def load_text(limit: int | None = None) -> str:
    """The Devil's Dictionary as one string (the first `limit` characters if given)."""
    text = gzip.decompress(DATA.read_bytes()).decode("utf-8")
    return text[:limit] if limit else text


@dataclass
class Vocab:
    chars: list[str]

    @classmethod
    def of(cls, text: str) -> "Vocab":
        return cls(sorted(set(text)))

    def encode(self, text: str) -> list[int]:
        index = {ch: i for i, ch in enumerate(self.chars)}
        return [index[ch] for ch in text if ch in index]

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def __len__(self) -> int:
        return len(self.chars)


def unigram_bits(train: str, val: str) -> float:
    """Bits per character of the letter-frequency model fitted on train, on val (add-one smoothing)."""
    counts = Counter(train)
    total, k = sum(counts.values()), len(set(train) | set(val))
    return -sum(math.log2((counts[ch] + 1) / (total + k)) for ch in val) / len(val)


@dataclass
class Run:
    """A trained model and what training measured."""

    model: object  # runtime.rnn.CharModel
    vocab: Vocab
    kind: str
    losses: list[float] = field(default_factory=list)  # training loss (nats) per step
    val_bits_per_char: float = 0.0
    unigram_bits_per_char: float = 0.0
    seconds: float = 0.0
    steps: int = 0
    parameters: int = 0

    def sample(self, prompt: str, n: int = 200, temperature: float = 0.6, seed: int = 0) -> str:
        return prompt + self.vocab.decode(self.model.sample(self.vocab.encode(prompt), n, temperature, seed))

    def gates(self, text: str):
        """Run text through the model and return its ActivationCache (gates and states, (1, T, H))."""
        import torch

        from ..runtime.capture import ActivationCache

        cache = ActivationCache()
        with torch.no_grad():
            self.model(torch.tensor([self.vocab.encode(text)]), capture=cache)
        return cache

    def __repr__(self) -> str:
        return (f"Run({self.kind}, {self.parameters:,} parameters, {self.steps} steps in {self.seconds:.1f} s: "
                f"{self.val_bits_per_char:.2f} bits/char on held-out text vs {self.unigram_bits_per_char:.2f} for letter frequencies)")  # fmt: skip


def train(kind: str = "lstm", *, steps: int = 200, hidden_size: int = 128, embed_size: int = 32, num_layers: int = 1,
          seq_len: int = 32, batch_size: int = 64, lr: float = 1e-2, chars: int = 200_000, seed: int = 0,
          progress: bool = False) -> Run:  # fmt: skip
    """Train a CharModel on the first `chars` characters (90% train, 10% held out) with Adam.

    Each step reads `batch_size` random windows of `seq_len` characters and predicts every next
    character (truncated backpropagation through time: the state starts at zero in each window).
    """
    import torch
    import torch.nn.functional as F

    from ..runtime.rnn import CharModel, RecurrentConfig

    torch.manual_seed(seed)
    text = load_text(chars)
    vocab = Vocab.of(text)
    split = int(0.9 * len(text))
    train_ids = torch.tensor(vocab.encode(text[:split]))
    val_ids = torch.tensor(vocab.encode(text[split:]))
    model = CharModel(len(vocab), RecurrentConfig(kind, embed_size, hidden_size, num_layers))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    run = Run(model, vocab, kind, parameters=sum(p.numel() for p in model.parameters()))
    run.unigram_bits_per_char = unigram_bits(text[:split], text[split:])

    steps_iter = range(steps)
    if progress:
        from tqdm.auto import tqdm

        steps_iter = tqdm(steps_iter, desc=f"training {kind}")
    started = time.perf_counter()
    model.train()
    for _ in steps_iter:
        starts = torch.randint(0, len(train_ids) - seq_len - 1, (batch_size,), generator=gen)
        window = torch.stack([train_ids[s : s + seq_len + 1] for s in starts.tolist()])  # (B, T+1)
        logits, _ = model(window[:, :-1])  # (B, T, vocab)
        loss = F.cross_entropy(logits.reshape(-1, len(vocab)), window[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        run.losses.append(loss.item())
    run.seconds = time.perf_counter() - started
    run.steps = steps
    run.val_bits_per_char = evaluate(model, val_ids)
    model.eval()
    return run


def evaluate(model, ids, streams: int = 16, seq_len: int = 128) -> float:
    """Bits per character on ids: cut into `streams` equal rows read side by side, each in order,
    carrying the state across windows (so every character but the first of a row has context)."""
    import torch
    import torch.nn.functional as F

    width = (len(ids) - 1) // streams
    rows = torch.stack([ids[i * width : (i + 1) * width + 1] for i in range(streams)])  # (S, width+1)
    total, count, state = 0.0, 0, None
    with torch.no_grad():
        for start in range(0, width, seq_len):
            chunk = rows[:, start : start + seq_len + 1]  # (S, <= seq_len+1)
            logits, state = model(chunk[:, :-1], state)  # (S, t, vocab)
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1), reduction="sum").item()
            count += chunk[:, 1:].numel()
    return total / count / math.log(2)
