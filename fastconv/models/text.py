"""Kim (2014), "Convolutional Neural Networks for Sentence Classification":
word embeddings, parallel 1-D convolutions of several widths over the
sentence, each max-pooled over time, dropout and a linear classifier."""
from .. import functional as F
from .. import nn


class TextCNN(nn.Module):
    """Input: (N, L) integer token ids, L at least the widest filter;
    output: (N, num_classes) logits. The paper's CNN-rand: 100 filters of
    widths 3, 4 and 5, dropout 0.5."""

    def __init__(self, vocab_size, num_classes=2, embedding_dim=300, widths=(3, 4, 5), filters=100, dropout=0.5,
                 padding_idx=None):
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx)
        self.convs = [nn.Conv1d(embedding_dim, filters, w) for w in widths]
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(filters * len(widths), num_classes)

    def forward(self, tokens):
        x = self.embedding(tokens).transpose(0, 2, 1)  # (N, L, D) -> (N, D, L): words along the conv's axis
        pooled = [F.adaptive_max_pool1d(F.relu(conv(x)), 1).flatten(1) for conv in self.convs]
        return self.fc(self.dropout(F.concat(pooled, dim=1)))
