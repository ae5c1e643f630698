"""Hidden states taken explicitly, not from a library's `output_hidden_states` tuple.

What `hidden_states` holds has changed between transformers releases: under 4.28 the last entry
of a `do_stable_layer_norm` HuBERT (the HuBERT-Large family) was the encoder's output after its
final LayerNorm (= `last_hidden_state`); under transformers 5 it is the last layer's output
*before* that LayerNorm. So "the last 4 hidden states" named a different set of tensors after
an upgrade. Here the tensors are named by what they are:

- `inputs[i]`: the input of encoder layer i (the embeddings for i = 0, else layer i-1's output),
  caught by a forward pre-hook on the layer;
- `last_output`: the last layer's output (before any final norm), caught by a forward hook;
- `final`: the model's `last_hidden_state` (after the final norm, where the model has one).

MERTools' tuple (transformers 4.28 for HuBERT; Baichuan2's own code) is `inputs + [final]`
(`post_norm=True`); transformers 5's HuBERT tuple is `inputs + [last_output]`
(`post_norm=False`). tests/test_extract_hidden.py checks both against the installed library,
so a release that changes the tuple's meaning fails a test rather than the features.
"""

from __future__ import annotations

import contextlib


class LayerStates(contextlib.AbstractContextManager):
    """`with LayerStates(model.encoder.layers) as cap: out = model(...)`, then
    `cap.last(k, out.last_hidden_state, post_norm)` -> the last k states, oldest first."""

    def __init__(self, layers):
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("no layers to take hidden states from")
        self.inputs: list = []
        self.last_output = None
        self._handles: list = []

    def __enter__(self):
        self.inputs, self.last_output = [], None

        def pre(_module, args, kwargs):
            self.inputs.append(args[0] if args else kwargs["hidden_states"])

        def post(_module, _args, output):
            self.last_output = output[0] if isinstance(output, tuple | list) else output

        self._handles = [m.register_forward_pre_hook(pre, with_kwargs=True) for m in self.layers]
        self._handles.append(self.layers[-1].register_forward_hook(post))
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles = []
        return False

    def states(self, final, post_norm: bool) -> list:
        """All L+1 states: the L layer inputs, then `final` (post_norm) or the last layer's
        output before the final norm."""
        if len(self.inputs) != len(self.layers) or self.last_output is None:
            raise RuntimeError(
                f"caught {len(self.inputs)} layer inputs for {len(self.layers)} layers: the "
                "model did not run each layer once"
            )
        return [*self.inputs, final if post_norm else self.last_output]

    def last(self, k: int, final, post_norm: bool) -> list:
        return self.states(final, post_norm)[-k:]
