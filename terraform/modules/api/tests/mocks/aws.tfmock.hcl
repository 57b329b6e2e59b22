# The AWS provider's mock for the api module's tests (api and web_page): the ids and ARNs AWS would return.
mock_resource "aws_api_gateway_rest_api" {
  defaults = {
    execution_arn    = "arn:aws:execute-api:eu-west-1:123456789012:abc123"
    id               = "abc123"
    root_resource_id = "root0001"
  }
}
mock_resource "aws_iam_role" {
  defaults = { arn = "arn:aws:iam::123456789012:role/unit-apigw-logs" }
}
mock_resource "aws_cloudwatch_log_group" {
  defaults = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:unit" }
}
mock_resource "aws_lambda_alias" {
  defaults = {
    arn        = "arn:aws:lambda:eu-west-1:123456789012:function:unit-api:live"
    invoke_arn = "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:unit-api:live/invocations"
  }
}
mock_resource "aws_api_gateway_stage" {
  defaults = {
    invoke_url = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/"
    arn        = "arn:aws:apigateway:eu-west-1::/restapis/abc123/stages/prod"
  }
}
mock_resource "aws_wafv2_web_acl" {
  defaults = { arn = "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/unit-api/0000" }
}
