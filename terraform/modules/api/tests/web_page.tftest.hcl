# GET / (web_page.tf): the web page at the stage root, with no API key, while POST /predict needs one.
mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name            = "unit-api"
  lambda_zip_path = "tests/fixtures/lambda.zip"
  lambda_role_arn = "arn:aws:iam::123456789012:role/unit-lambda"
  endpoint_name   = "unit-endpoint"
}

run "page_at_the_stage_root_without_a_key" {
  command = apply

  assert {
    condition = (
      aws_api_gateway_method.web_page.resource_id == aws_api_gateway_rest_api.this.root_resource_id &&
      aws_api_gateway_method.web_page.http_method == "GET" &&
      aws_api_gateway_method.web_page.authorization == "NONE"
    )
    error_message = "The page must be GET on the API's root resource."
  }

  assert {
    condition     = !aws_api_gateway_method.web_page.api_key_required && aws_api_gateway_method.this["predict"].api_key_required
    error_message = "The page must need no API key while POST /predict does."
  }

  assert {
    condition = (
      aws_api_gateway_integration.web_page.type == "AWS_PROXY" &&
      aws_api_gateway_integration.web_page.resource_id == aws_api_gateway_rest_api.this.root_resource_id &&
      aws_api_gateway_integration.web_page.uri == aws_lambda_alias.live.invoke_arn
    )
    error_message = "The page must be a Lambda proxy integration of the live alias."
  }

  assert {
    condition     = aws_lambda_permission.web_page.source_arn == "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/GET/"
    error_message = "API Gateway must be allowed to invoke the function for GET / of the stage only."
  }

  assert {
    condition = alltrue([
      for type in aws_api_gateway_rest_api.this.binary_media_types : !contains(["*/*", "text/*", "text/html"], type)
    ])
    error_message = "No binary media type may match text/html, or API Gateway would mangle the page."
  }

  assert {
    condition     = output.web_page_url == "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/"
    error_message = "web_page_url must be the stage URL with a trailing slash."
  }
}

run "without_require_api_key_nothing_needs_a_key" {
  command = plan

  variables {
    require_api_key = false
  }

  assert {
    condition     = !aws_api_gateway_method.web_page.api_key_required && !aws_api_gateway_method.this["predict"].api_key_required
    error_message = "Without require_api_key nothing needs a key."
  }
}

run "rejects_binary_media_types_that_match_html" {
  command = plan

  variables {
    binary_media_types = ["*/*"]
  }

  expect_failures = [aws_api_gateway_method.web_page]
}
