# Adapter authentication/authorization inputs that come from clients or the Kubernetes API: the
# request path (authorizer attributes, SubjectAccessReview body, 403 message), the Authorization
# header, the extension-apiserver-authentication ConfigMap and a TokenReview for any token.
kpiscale_add_fuzz_target(auth_inputs SOURCE ${CMAKE_CURRENT_LIST_DIR}/auth_inputs_fuzz.cc
                         LIBS kpiscale::adapter)
