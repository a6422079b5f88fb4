"""segloss: segmentation losses and metrics from a segloss daemon, three lines in a training loop.

    import segloss
    client = segloss.Client("http://127.0.0.1:8080")
    answer = client.evaluate(logits, labels, dice_loss=True)   # synchronous
    client.log(logits, labels, run="deeplab", step=step)      # returns at once
    client.flush()

Standard library and numpy at import; PyTorch tensors are accepted when torch is installed.
segloss.local.evaluate computes the same answer in-process through libsegloss.so.
"""
from .client import Answer, Client, SeglossError

__version__ = "0.1.0"
__all__ = ["Answer", "Client", "SeglossError", "__version__"]
