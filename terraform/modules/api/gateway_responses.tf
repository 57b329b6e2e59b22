# Errors API Gateway answers itself (bad key, throttling, validation) use the same JSON shape and
# stable codes as the function's errors: {"error": {"code", "message"}, "request_id"}.
# The messages are fixed text: gateway response templates get plain substitution, no VTL, so there is no
# $util.escapeJavaScript, and $context.error.validationErrorString / messageString (which carry quotes)
# would break the JSON. $context.requestId is an id, safe inside a string.
locals {
  gateway_responses = {
    BAD_REQUEST_BODY = {
      status  = "400"
      code    = "invalid_request"
      message = "The request body must be a JSON object: {\"image\": ...}, {\"images\": [...]} or {\"url\": ...}."
    }
    BAD_REQUEST_PARAMETERS = {
      status  = "415"
      code    = "unsupported_media_type"
      message = "The request needs a Content-Type header: image/jpeg, image/png or application/json."
    }
    MISSING_AUTHENTICATION_TOKEN = {
      status  = "404"
      code    = "not_found"
      message = "No such route: the API serves GET / (the web page), POST /predict and GET /health."
    }
    INVALID_API_KEY = {
      status  = "403"
      code    = "forbidden"
      message = "The x-api-key header is missing or not a valid key for this API."
    }
    ACCESS_DENIED = {
      status  = "403"
      code    = "forbidden"
      message = "The API's access policy denies this request."
    }
    THROTTLED = {
      status  = "429"
      code    = "throttled"
      message = "Too many requests: slow down and retry."
    }
    QUOTA_EXCEEDED = {
      status  = "429"
      code    = "quota_exceeded"
      message = "The API key's daily request quota is used up."
    }
    REQUEST_TOO_LARGE = {
      status  = "413"
      code    = "payload_too_large"
      message = "The request body is larger than API Gateway accepts (10 MB)."
    }
    INTEGRATION_TIMEOUT = {
      status  = "504"
      code    = "endpoint_timeout"
      message = "The prediction took longer than the API's 29 s limit."
    }
    DEFAULT_5XX = {
      status  = null
      code    = "internal_error"
      message = "The API failed to answer; retry later."
    }
  }
}

locals {
  # The gateway's own answers (403 bad key, 429 throttled, 504 timeout, ...) need the CORS header too, or
  # a browser hides them from the page. One origin (or "*") is sent as is; with several, the request's
  # Origin is echoed (these bodies carry no data, only the error code), with Vary: Origin for caches.
  cors_response_parameters = length(var.allowed_origins) == 0 ? {} : (
    length(var.allowed_origins) == 1 ? {
      "gatewayresponse.header.Access-Control-Allow-Origin" = "'${var.allowed_origins[0]}'"
      } : {
      "gatewayresponse.header.Access-Control-Allow-Origin" = "method.request.header.Origin"
      "gatewayresponse.header.Vary"                        = "'Origin'"
    }
  )
}

resource "aws_api_gateway_gateway_response" "this" {
  for_each = local.gateway_responses

  rest_api_id   = aws_api_gateway_rest_api.this.id
  response_type = each.key
  status_code   = each.value.status

  response_parameters = local.cors_response_parameters

  response_templates = {
    "application/json" = jsonencode({
      error      = { code = each.value.code, message = each.value.message }
      request_id = "$context.requestId"
    })
  }
}
