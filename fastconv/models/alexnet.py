"""AlexNet (Krizhevsky, Sutskever and Hinton 2012) for 224x224 images."""
from .. import nn


class AlexNet(nn.Module):
    """torchvision's AlexNet by default (its widths, no LRN, one group):
    61,100,840 parameters at 1000 classes. original=True builds the paper's
    network instead: 96-256-384-384-256 channels, local response
    normalization (size 5, alpha 1e-4, beta 0.75, k 2) after the first two
    convolutions' ReLU, and the layers the paper split across two GPUs as
    groups=2 convolutions (conv2, conv4, conv5). Either way the parameter
    names are torchvision's."""

    def __init__(self, num_classes=1000, dropout=0.5, original=False):
        widths, groups = ((96, 256, 384, 384, 256), 2) if original else ((64, 192, 384, 256, 256), 1)
        c1, c2, c3, c4, c5 = widths
        norm = [nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0)] if original else []  # no parameters: shared
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, 11, stride=4, padding=2), nn.ReLU(), *norm, nn.MaxPool2d(3, 2),
            nn.Conv2d(c1, c2, 5, padding=2, groups=groups), nn.ReLU(), *norm, nn.MaxPool2d(3, 2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c3, c4, 3, padding=1, groups=groups), nn.ReLU(),
            nn.Conv2d(c4, c5, 3, padding=1, groups=groups), nn.ReLU(), nn.MaxPool2d(3, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(c5 * 36, 4096), nn.ReLU(),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def alexnet(num_classes=1000, **kwargs):
    return AlexNet(num_classes, **kwargs)
