"""Small CNNs for MNIST-sized images (1x28x28, 10 classes)."""
from .. import functional as F
from .. import nn


class LeNet5(nn.Module):
    """LeCun et al. 1998 with ReLU and max pooling: conv5x5 1->6 (pad 2),
    pool, conv5x5 6->16, pool, fc 400-120-84-10."""

    def __init__(self, classes=10):
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class TutorialCNN(nn.Module):
    """The classic TensorFlow MNIST tutorial network: conv3x3 1->64, pool,
    conv3x3 64->128, pool, fc 6272->1024, dropout 0.25, fc 1024->10."""

    def __init__(self, classes=10, dropout=0.25):
        self.features = nn.Sequential(
            nn.Conv2d(1, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(7 * 7 * 128, 1024), nn.ReLU(), nn.Dropout(dropout), nn.Linear(1024, classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class InceptionBlock(nn.Module):
    """GoogLeNet's block as the paper draws it: 1x1, 1x1->3x3, 1x1->5x5 and
    3x3 pool->1x1 branches, each with ReLU, concatenated along channels."""

    def __init__(self, in_channels, c1, c3_reduce, c3, c5_reduce, c5, pool_proj):
        self.branch1 = nn.Sequential(nn.Conv2d(in_channels, c1, 1), nn.ReLU())
        self.branch3 = nn.Sequential(nn.Conv2d(in_channels, c3_reduce, 1), nn.ReLU(),
                                     nn.Conv2d(c3_reduce, c3, 3, padding=1), nn.ReLU())
        self.branch5 = nn.Sequential(nn.Conv2d(in_channels, c5_reduce, 1), nn.ReLU(),
                                     nn.Conv2d(c5_reduce, c5, 5, padding=2), nn.ReLU())
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(in_channels, pool_proj, 1), nn.ReLU())

    def forward(self, x):
        return F.concat([self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)], dim=1)


class InceptionNet(nn.Module):
    """A small Inception network for 28x28 images: a 3x3 stem, two Inception
    blocks each followed by 2x2 max pooling (28 -> 14 -> 7), global average
    pooling, dropout and a linear classifier."""

    def __init__(self, classes=10, in_channels=1):
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU())
        self.blocks = nn.Sequential(
            InceptionBlock(32, 16, 16, 32, 4, 8, 8), nn.MaxPool2d(2),
            InceptionBlock(64, 32, 32, 64, 8, 16, 16), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(128, classes))

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))
