"""Runnable lessons behind the learning road (demo_notebooks/): measurements and small
trainable models that the notebooks call and the tests check.

    gradients   how far a gradient reaches back through an RNN, an LSTM and self-attention
    charlm      a character-level RNN/LSTM trained on a real text in under a minute on CPU

Each module imports torch on first use, like the rest of llm_magics.
"""
