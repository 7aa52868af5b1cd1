"""The Open Inference Protocol v2 (KServe's and Triton's REST protocol) for tabular models:
each input tensor is one column of the frame, each output tensor the prediction or one
score. `tensors` reads and writes tensor data, JSON and binary; `codec` turns inference
requests into columns and scores into responses; `metadata` describes the server and
the model as `infer` serves them."""
