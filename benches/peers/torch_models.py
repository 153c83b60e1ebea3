"""PyTorch twins of gradlab's benchmark networks, layer for layer.

- ``resnet(depth)``: the CIFAR ResNet of He et al. (2016), option-A
  shortcuts (stride-2 subsampling, zero channels split before and after, as
  gradlab's ``ShortcutAOp``), 3x3 convolutions without bias, BatchNorm after
  each, a global average pool and a linear layer; ResNet-20 has 269,722
  parameters, ResNet-56 853,018.
- ``resnet(depth, plain=True)``: the same stack without the shortcuts.
- ``mobilenet()``: gradlab's ``MobileNetConfig::small()``: a 3x3 stem to 32
  channels, seven separable blocks (depthwise 3x3 + BN + ReLU, pointwise
  1x1 + BN + ReLU) of 64; 128 (stride 2), 128; 256 (stride 2), 256; 512
  (stride 2), 512 channels, global average pool, linear; 543,050
  parameters.

Each builder returns the module; ``PARAMS`` holds the counts gradlab reports,
which ``torch_step.py`` checks before timing anything.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

PARAMS = {
    "resnet:depth=20": 269_722,
    "plain-resnet:depth=20": 269_722,
    "resnet:depth=56": 853_018,
    "mobilenet": 543_050,
}


def conv_bn(cin, cout, k, stride, groups=1):
    return [
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride, shortcut):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = shortcut
        self.stride = stride
        self.front = (cout - cin) // 2
        self.back = cout - cin - self.front

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut:
            s = x
            if self.stride != 1:
                s = s[:, :, :: self.stride, :: self.stride]
            if self.front or self.back:
                s = F.pad(s, (0, 0, 0, 0, self.front, self.back))
            out = out + s
        return F.relu(out)


class CifarResNet(nn.Module):
    def __init__(self, depth, plain=False, num_classes=10):
        super().__init__()
        assert (depth - 2) % 6 == 0
        n = (depth - 2) // 6
        self.stem = nn.Sequential(*conv_bn(3, 16, 3, 1), nn.ReLU())
        blocks = []
        cin = 16
        for i, c in enumerate([16, 32, 64]):
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(cin, c, stride, shortcut=not plain))
                cin = c
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


class SmallMobileNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        layers = [*conv_bn(3, 32, 3, 1), nn.ReLU()]
        cin = 32
        for cout, blocks, stride in [(64, 1, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)]:
            for j in range(blocks):
                s = stride if j == 0 else 1
                layers += [*conv_bn(cin, cin, 3, s, groups=cin), nn.ReLU()]
                layers += [*conv_bn(cin, cout, 1, 1), nn.ReLU()]
                cin = cout
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.body(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


def build(model):
    if model == "resnet:depth=20":
        return CifarResNet(20)
    if model == "plain-resnet:depth=20":
        return CifarResNet(20, plain=True)
    if model == "resnet:depth=56":
        return CifarResNet(56)
    if model == "mobilenet":
        return SmallMobileNet()
    raise ValueError(f"unknown model {model!r}")


def num_params(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
