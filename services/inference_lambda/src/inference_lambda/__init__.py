"""Dog-breed classifier API: the Lambda handler (`inference_lambda.app.handler`) and its local HTTP front."""

__version__ = "0.1.0"
