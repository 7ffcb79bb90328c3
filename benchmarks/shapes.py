"""Benchmark shapes from real models.

Conv: name -> (N, C_in, H, W, C_out, k, stride, padding, dilation, groups).
"""
CONV = {
    "mnist_c1": (50, 1, 28, 28, 64, 3, 1, 1, 1, 1),
    "mnist_c2": (50, 64, 14, 14, 128, 3, 1, 1, 1, 1),
    "lenet_c1": (64, 1, 32, 32, 6, 5, 1, 0, 1, 1),
    "lenet_c2": (64, 6, 14, 14, 16, 5, 1, 0, 1, 1),
    "cifar_3x3": (32, 64, 32, 32, 64, 3, 1, 1, 1, 1),
    "resnet_3x3": (8, 128, 28, 28, 128, 3, 1, 1, 1, 1),
    "resnet_s2": (8, 64, 56, 56, 128, 3, 2, 1, 1, 1),
    "pointwise_1x1": (8, 256, 28, 28, 64, 1, 1, 0, 1, 1),
    "alexnet_c1": (8, 3, 227, 227, 96, 11, 4, 0, 1, 1),
    "dilated_d2": (8, 64, 56, 56, 64, 3, 1, 2, 2, 1),
    "depthwise": (8, 128, 56, 56, 128, 3, 1, 1, 1, 128),
    "grouped_g2": (8, 96, 27, 27, 256, 5, 1, 2, 1, 2),
    # the classes where PyTorch led (issue 13): late-stage wide ResNet
    # layers at a small batch, and depthwise 3x3 at MobileNet widths
    "resnet_late_256": (8, 256, 14, 14, 256, 3, 1, 1, 1, 1),
    "resnet_late_512": (8, 512, 7, 7, 512, 3, 1, 1, 1, 1),
    "mobilenet_dw": (8, 128, 28, 28, 128, 3, 1, 1, 1, 128),
}

# Transposed conv: name -> (N, C_in, H, W, C_out, k, stride, padding, output_padding)
CONV_TRANSPOSE = {
    "dcgan_k4s2": (8, 128, 14, 14, 64, 4, 2, 1, 0),
    "decoder_to_1ch": (8, 64, 28, 28, 1, 3, 2, 1, 1),
}

# Pooling: name -> (shape, kernel, stride)
POOL = {
    "mnist_2x2": ((50, 64, 28, 28), 2, 2),
    "alexnet_3x3s2": ((8, 96, 55, 55), 3, 2),
}
