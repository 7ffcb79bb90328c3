"""Residual networks (He, Zhang, Ren and Sun 2016): torchvision's ResNet-18,
-34 and -50 for 224x224 images, and the paper's CIFAR-style ResNet-20 for
small ones. Block and parameter names are torchvision's."""
from .. import functional as F
from .. import nn


def _downsample(in_channels, out_channels, stride):
    """The projection shortcut where a block changes shape, else None."""
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    """Two 3x3 convs with batch norm; the shortcut is the identity, or a
    strided 1x1 conv with batch norm when the shape changes."""
    expansion = 1

    def __init__(self, in_channels, channels, stride=1):
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = _downsample(in_channels, channels, stride)

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided, as torchvision's "v1.5"), 1x1 expand to
    4x the channels, each with batch norm."""
    expansion = 4

    def __init__(self, in_channels, channels, stride=1):
        out = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.downsample = _downsample(in_channels, out, stride)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn3(self.conv3(F.relu(self.bn2(self.conv2(y)))))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


def _stage(block, in_channels, channels, blocks, stride):
    layers = [block(in_channels, channels, stride)]
    layers += [block(channels * block.expansion, channels) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNet(nn.Module):
    """torchvision's ResNet: a 7x7 stride-2 stem and 3x3 max pool, four
    stages of blocks (64, 128, 256, 512 channels; stride 2 from the second
    on), global average pooling and a linear classifier."""

    def __init__(self, block, layers, num_classes=1000, in_channels=3):
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths, c = (64, 128, 256, 512), 64
        for i, (width, count) in enumerate(zip(widths, layers)):
            setattr(self, f"layer{i + 1}", _stage(block, c, width, count, 1 if i == 0 else 2))
            c = width * block.expansion
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def resnet18(num_classes=1000, **kwargs):
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes, **kwargs)


def resnet34(num_classes=1000, **kwargs):
    return ResNet(BasicBlock, (3, 4, 6, 3), num_classes, **kwargs)


def resnet50(num_classes=1000, **kwargs):
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, **kwargs)


class CifarResNet(nn.Module):
    """The paper's network for small images (section 4.2): a 3x3 conv to 16
    channels, three stages of n basic blocks at 16, 32 and 64 channels
    (stride 2 entering the last two; projection shortcuts there), global
    average pooling and a linear classifier: 6n + 2 layers."""

    def __init__(self, n=3, num_classes=10, in_channels=1):
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = _stage(BasicBlock, 16, 16, n, 1)
        self.layer2 = _stage(BasicBlock, 16, 32, n, 2)
        self.layer3 = _stage(BasicBlock, 32, 64, n, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.avgpool(x).flatten(1))


def resnet20(num_classes=10, in_channels=1):
    """ResNet-20 for 28x28 (or CIFAR's 32x32) images: 0.27 M parameters."""
    return CifarResNet(3, num_classes, in_channels)
