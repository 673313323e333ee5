# The Kubernetes API client (kube_client.cc): cpp-httplib over OpenSSL, kubeconfig via yaml-cpp.
target_link_libraries(kpiscale_common PUBLIC PkgConfig::HTTPLIB OpenSSL::SSL OpenSSL::Crypto)
