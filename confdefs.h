/* confdefs.h */
#define PACKAGE_NAME "ancora"
#define PACKAGE_TARNAME "ancora"
#define PACKAGE_VERSION "0.1.0"
#define PACKAGE_STRING "ancora 0.1.0"
#define PACKAGE_BUGREPORT ""
#define PACKAGE_URL ""
#define PACKAGE "ancora"
#define VERSION "0.1.0"
