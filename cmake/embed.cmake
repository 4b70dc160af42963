# Writes a header with the example files as string constants, so `tandem demo`
# works from any folder without the source tree.
file(READ ${SRC_DIR}/examples/tandem.yaml CONFIG_TEXT)
file(READ ${SRC_DIR}/examples/legacy_schema.sql LEGACY_TEXT)
file(READ ${SRC_DIR}/examples/modern_schema.sql MODERN_TEXT)
file(READ ${SRC_DIR}/examples/postgres/modern_schema.sql MODERN_PG_TEXT)
file(WRITE ${OUT}.tmp "// Generated from examples/ by cmake/embed.cmake. Do not edit.\n#pragma once\nnamespace tandem::examples {\n")
file(APPEND ${OUT}.tmp "inline constexpr const char* kConfig = R\"TANDEM(${CONFIG_TEXT})TANDEM\";\n")
file(APPEND ${OUT}.tmp "inline constexpr const char* kLegacySchema = R\"TANDEM(${LEGACY_TEXT})TANDEM\";\n")
file(APPEND ${OUT}.tmp "inline constexpr const char* kModernSchema = R\"TANDEM(${MODERN_TEXT})TANDEM\";\n")
file(APPEND ${OUT}.tmp "inline constexpr const char* kModernSchemaPostgres = R\"TANDEM(${MODERN_PG_TEXT})TANDEM\";\n}\n")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
