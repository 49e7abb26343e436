"""Making model-directory files on a machine with torch and onnx: the camera-bytes ONNX
(``onnx``), a model directory (``model_dir``), the authors' checkpoints (``official``), the int8
model (``int8``) and the ONNX files TensorRT builds engines from (``tensorrt_onnx``, also read
on the robot). Each writes the cards only through ``artifacts.update_card``."""
