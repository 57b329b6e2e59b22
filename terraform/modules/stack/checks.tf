# Warnings, not errors: the plan still succeeds.

check "lambda_in_vpc_reaches_the_internet" {
  assert {
    condition     = !local.lambda_in_vpc || var.enable_nat_gateway
    error_message = "lambda_in_vpc = true without enable_nat_gateway = true: the function has no route to the internet, so URL mode ({\"url\": ...}) fails with url_fetch_failed. Image uploads still work."
  }
}

check "trainer_host_can_install_its_package" {
  assert {
    condition     = !var.enable_trainer_host || var.enable_nat_gateway || var.trainer_package_s3_uri != null
    error_message = "enable_trainer_host = true without enable_nat_gateway = true and without trainer_package_s3_uri: the host cannot reach PyPI, so it cannot install the trainer."
  }
}
