"""The cuDNN checks, for a machine with a CUDA GPU (docs/gpu.md).

    cudnn.py     when each Keras backend takes its cuDNN kernel, and the known differences, as data
    dispatch.py  evidence of which kernel actually ran (a recorder in the Keras worker, torch.profiler)
    run.py       the GPU runner: the LSTM/GRU matrix per backend and TF32 setting, GPU fixture sets
"""
