"""Networks of CNN history, with torchvision's architectures and parameter
names where torchvision has them, so weights move between the two
(fastconv.convert turns a PyTorch state dict into an .npz).

    small       LeNet-5, the TensorFlow tutorial CNN, ResNet-20, a small
                Inception network: 28x28 images, trained by fastconv-mnist
    alexnet     AlexNet, torchvision's or the paper's (LRN, two groups)
    resnet      ResNet-18/34/50 and their blocks
    googlenet   GoogLeNet (Inception v1)
    text        Kim's CNN for sentence classification
"""
from .alexnet import AlexNet, alexnet
from .googlenet import GoogLeNet, Inception, googlenet
from .resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet20, resnet34, resnet50
from .small import InceptionBlock, InceptionNet, LeNet5, TutorialCNN
from .text import TextCNN

ResidualBlock = BasicBlock  # its name in fastconv 0.1

# The models fastconv-mnist trains: 28x28 single-channel images, 10 classes.
MODELS = {"tutorial": TutorialCNN, "lenet5": LeNet5, "resnet20": resnet20, "inception": InceptionNet}
