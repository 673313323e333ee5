#pragma once

#include <string>

namespace kpiscale::adapter::internal {

/// The Swagger 2.0 document for /openapi/v2: the paths of both groups and the types they serve
/// (MetricValueList v1beta1/v1beta2, ExternalMetricValueList, APIResourceList, Status).
std::string BuildOpenApi(const std::string& version);

}  // namespace kpiscale::adapter::internal
