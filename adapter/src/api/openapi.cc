#include "api/openapi.h"

#include <nlohmann/json.hpp>

namespace kpiscale::adapter::internal {
namespace {

using Json = nlohmann::ordered_json;

Json Ref(const std::string& name) { return Json{{"$ref", "#/definitions/" + name}}; }

Json Str(const std::string& description) {
  return Json{{"type", "string"}, {"description", description}};
}

Json Gvk(const std::string& group, const std::string& version, const std::string& kind) {
  return Json::array({Json{{"group", group}, {"version", version}, {"kind", kind}}});
}

Json GetOperation(const std::string& id, const std::string& ref, const Json& params) {
  Json op;
  op["operationId"] = id;
  op["produces"] = Json::array({"application/json"});
  op["schemes"] = Json::array({"https"});
  op["parameters"] = params;
  op["responses"] =
      Json{{"200", Json{{"description", "OK"}, {"schema", Ref(ref)}}},
           {"400", Json{{"description", "Bad selector or path"},
                        {"schema", Ref("io.k8s.apimachinery.pkg.apis.meta.v1.Status")}}},
           {"404", Json{{"description", "No such metric or object"},
                        {"schema", Ref("io.k8s.apimachinery.pkg.apis.meta.v1.Status")}}}};
  return op;
}

Json PathParam(const std::string& name) {
  return Json{{"name", name}, {"in", "path"}, {"required", true}, {"type", "string"}};
}
Json QueryParam(const std::string& name, const std::string& description) {
  return Json{{"name", name},
              {"in", "query"},
              {"type", "string"},
              {"uniqueItems", true},
              {"description", description}};
}

}  // namespace

std::string BuildOpenApi(const std::string& version) {
  Json doc;
  doc["swagger"] = "2.0";
  doc["info"] = Json{{"title", "kpiscale-adapter"}, {"version", "v" + version}};
  Json paths = Json::object();
  const Json label_selector =
      QueryParam("labelSelector", "selects objects (custom) or series (external) by label");
  const Json metric_selector = QueryParam("metricLabelSelector", "selects series by metric label");
  for (const std::string v : {"v1beta1", "v1beta2"}) {
    const std::string base = "/apis/custom.metrics.k8s.io/" + v;
    const std::string list = "io.k8s.metrics.pkg.apis.custom_metrics." + v + ".MetricValueList";
    paths[base] = Json{{"get", GetOperation("getCustomMetrics" + v + "Resources",
                                            "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList",
                                            Json::array())}};
    paths[base + "/namespaces/{namespace}/{resource}/{name}/{metric}"] = Json{
        {"get",
         GetOperation("getNamespacedCustomMetric" + v, list,
                      Json::array({PathParam("namespace"), PathParam("resource"), PathParam("name"),
                                   PathParam("metric"), label_selector, metric_selector}))}};
    paths[base + "/namespaces/{namespace}/metrics/{metric}"] = Json{
        {"get", GetOperation(
                    "getNamespaceCustomMetric" + v, list,
                    Json::array({PathParam("namespace"), PathParam("metric"), metric_selector}))}};
    paths[base + "/{resource}/{name}/{metric}"] = Json{
        {"get", GetOperation("getClusterCustomMetric" + v, list,
                             Json::array({PathParam("resource"), PathParam("name"),
                                          PathParam("metric"), label_selector, metric_selector}))}};
  }
  paths["/apis/external.metrics.k8s.io/v1beta1"] = Json{
      {"get", GetOperation("getExternalMetricsV1beta1Resources",
                           "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList", Json::array())}};
  paths["/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}"] = Json{
      {"get",
       GetOperation("listExternalMetricV1beta1",
                    "io.k8s.metrics.pkg.apis.external_metrics.v1beta1.ExternalMetricValueList",
                    Json::array({PathParam("namespace"), PathParam("metric"), label_selector}))}};
  doc["paths"] = paths;

  Json defs = Json::object();
  const Json object_ref =
      Json{{"type", "object"},
           {"properties", Json{{"kind", Str("Kind of the referent")},
                               {"namespace", Str("Namespace of the referent")},
                               {"name", Str("Name of the referent")},
                               {"apiVersion", Str("API version of the referent")}}}};
  defs["io.k8s.api.core.v1.ObjectReference"] = object_ref;
  defs["io.k8s.apimachinery.pkg.api.resource.Quantity"] =
      Str("Canonical resource.Quantity string, e.g. 150m");
  defs["io.k8s.apimachinery.pkg.apis.meta.v1.Time"] =
      Json{{"type", "string"}, {"format", "date-time"}};
  defs["io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"] = Json{{"type", "object"}};
  defs["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"] =
      Json{{"type", "object"},
           {"properties",
            Json{{"matchLabels",
                  Json{{"type", "object"}, {"additionalProperties", Json{{"type", "string"}}}}},
                 {"matchExpressions",
                  Json{{"type", "array"},
                       {"items",
                        Json{{"type", "object"},
                             {"properties",
                              Json{{"key", Str("label key")},
                                   {"operator", Str("In, NotIn, Exists, DoesNotExist")},
                                   {"values", Json{{"type", "array"},
                                                   {"items", Json{{"type", "string"}}}}}}}}}}}}}};
  const Json meta = Ref("io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta");
  const Json time = Ref("io.k8s.apimachinery.pkg.apis.meta.v1.Time");
  const Json quantity = Ref("io.k8s.apimachinery.pkg.api.resource.Quantity");
  const Json selector = Ref("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector");
  const Json int64 = Json{{"type", "integer"}, {"format", "int64"}};
  defs["io.k8s.metrics.pkg.apis.custom_metrics.v1beta1.MetricValue"] =
      Json{{"type", "object"},
           {"required", Json::array({"describedObject", "metricName", "timestamp", "value"})},
           {"properties", Json{{"describedObject", Ref("io.k8s.api.core.v1.ObjectReference")},
                               {"metricName", Str("name of the metric")},
                               {"timestamp", time},
                               {"window", int64},
                               {"value", quantity},
                               {"selector", selector}}}};
  defs["io.k8s.metrics.pkg.apis.custom_metrics.v1beta2.MetricIdentifier"] =
      Json{{"type", "object"},
           {"required", Json::array({"name"})},
           {"properties", Json{{"name", Str("name of the metric")}, {"selector", selector}}}};
  defs["io.k8s.metrics.pkg.apis.custom_metrics.v1beta2.MetricValue"] =
      Json{{"type", "object"},
           {"required", Json::array({"describedObject", "metric", "timestamp", "value"})},
           {"properties",
            Json{{"describedObject", Ref("io.k8s.api.core.v1.ObjectReference")},
                 {"metric", Ref("io.k8s.metrics.pkg.apis.custom_metrics.v1beta2.MetricIdentifier")},
                 {"timestamp", time},
                 {"windowSeconds", int64},
                 {"value", quantity}}}};
  for (const std::string v : {"v1beta1", "v1beta2"}) {
    defs["io.k8s.metrics.pkg.apis.custom_metrics." + v + ".MetricValueList"] = Json{
        {"type", "object"},
        {"required", Json::array({"items"})},
        {"properties", Json{{"apiVersion", Str("custom.metrics.k8s.io/" + v)},
                            {"kind", Str("MetricValueList")},
                            {"metadata", meta},
                            {"items", Json{{"type", "array"},
                                           {"items", Ref("io.k8s.metrics.pkg.apis.custom_metrics." +
                                                         v + ".MetricValue")}}}}},
        {"x-kubernetes-group-version-kind", Gvk("custom.metrics.k8s.io", v, "MetricValueList")}};
  }
  defs["io.k8s.metrics.pkg.apis.external_metrics.v1beta1.ExternalMetricValue"] =
      Json{{"type", "object"},
           {"required", Json::array({"metricName", "metricLabels", "timestamp", "value"})},
           {"properties",
            Json{{"metricName", Str("name of the metric")},
                 {"metricLabels",
                  Json{{"type", "object"}, {"additionalProperties", Json{{"type", "string"}}}}},
                 {"timestamp", time},
                 {"window", int64},
                 {"value", quantity}}}};
  defs["io.k8s.metrics.pkg.apis.external_metrics.v1beta1.ExternalMetricValueList"] =
      Json{{"type", "object"},
           {"required", Json::array({"items"})},
           {"properties",
            Json{{"apiVersion", Str("external.metrics.k8s.io/v1beta1")},
                 {"kind", Str("ExternalMetricValueList")},
                 {"metadata", meta},
                 {"items", Json{{"type", "array"},
                                {"items", Ref("io.k8s.metrics.pkg.apis.external_metrics.v1beta1."
                                              "ExternalMetricValue")}}}}},
           {"x-kubernetes-group-version-kind",
            Gvk("external.metrics.k8s.io", "v1beta1", "ExternalMetricValueList")}};
  defs["io.k8s.apimachinery.pkg.apis.meta.v1.APIResource"] =
      Json{{"type", "object"},
           {"required", Json::array({"name", "singularName", "namespaced", "kind", "verbs"})},
           {"properties",
            Json{{"name", Str("resource/metric")},
                 {"singularName", Str("always empty")},
                 {"namespaced", Json{{"type", "boolean"}}},
                 {"kind", Str("MetricValueList or ExternalMetricValueList")},
                 {"verbs", Json{{"type", "array"}, {"items", Json{{"type", "string"}}}}}}}};
  defs["io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList"] =
      Json{{"type", "object"},
           {"required", Json::array({"groupVersion", "resources"})},
           {"properties",
            Json{{"apiVersion", Str("v1")},
                 {"kind", Str("APIResourceList")},
                 {"groupVersion", Str("group/version")},
                 {"resources",
                  Json{{"type", "array"},
                       {"items", Ref("io.k8s.apimachinery.pkg.apis.meta.v1.APIResource")}}}}}};
  defs["io.k8s.apimachinery.pkg.apis.meta.v1.Status"] =
      Json{{"type", "object"},
           {"properties", Json{{"apiVersion", Str("v1")},
                               {"kind", Str("Status")},
                               {"metadata", meta},
                               {"status", Str("Success or Failure")},
                               {"message", Str("human-readable description")},
                               {"reason", Str("machine-readable reason")},
                               {"code", Json{{"type", "integer"}, {"format", "int32"}}}}},
           {"x-kubernetes-group-version-kind", Gvk("", "v1", "Status")}};
  doc["definitions"] = defs;
  return doc.dump();
}

}  // namespace kpiscale::adapter::internal
