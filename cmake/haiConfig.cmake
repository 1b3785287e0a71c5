# find_package(hai): the targets hai::hai (static) and hai::hai_shared (the core), and
# hai::hai_hybrid / hai::hai_hybrid_shared (the hybrid router, include/hai_hybrid.h), with what
# they link.
include(CMakeFindDependencyMacro)
find_dependency(Threads)
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
pkg_check_modules(CRYPTO REQUIRED IMPORTED_TARGET libcrypto)
include(${CMAKE_CURRENT_LIST_DIR}/haiTargets.cmake)
