# GET / at the stage root (https://<id>.execute-api.<region>.amazonaws.com/<stage>/): the web page for people,
# served by the same function (inference_lambda/web_page.py). It needs no API key: the page is public and holds
# no secret; it asks the user for the key and sends it with its POST /predict, which requires one.
resource "aws_api_gateway_method" "web_page" {
  #checkov:skip=CKV_AWS_59:The public web page holds no secret and calls POST /predict, which requires the API key.
  rest_api_id      = aws_api_gateway_rest_api.this.id
  resource_id      = aws_api_gateway_rest_api.this.root_resource_id
  http_method      = "GET"
  authorization    = "NONE"
  api_key_required = false
  # Nothing to validate on a GET without parameters; attached so every method goes through the validator.
  request_validator_id = aws_api_gateway_request_validator.this.id

  lifecycle {
    # The function answers the page as plain text (isBase64Encoded false); API Gateway would treat a text/html
    # answer as binary, and mangle it, if a binary media type matched the browser's Accept header.
    precondition {
      condition     = length(setintersection(var.binary_media_types, ["*/*", "text/*", "text/html"])) == 0
      error_message = "binary_media_types must not match text/html (*/*, text/*, text/html): the web page at GET / would be served mangled."
    }
  }
}

resource "aws_api_gateway_integration" "web_page" {
  rest_api_id             = aws_api_gateway_rest_api.this.id
  resource_id             = aws_api_gateway_rest_api.this.root_resource_id
  http_method             = aws_api_gateway_method.web_page.http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = aws_lambda_alias.live.invoke_arn
}

resource "aws_lambda_permission" "web_page" {
  statement_id  = "AllowApiGateway_web_page"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  qualifier     = aws_lambda_alias.live.name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this.execution_arn}/${var.stage_name}/GET/"
}
