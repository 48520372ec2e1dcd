# Embeds sql/NNN_*.sql into a generated C++ source with CMake alone, so the binaries carry
# their migrations and a changed .sql file regenerates the source.
function(daybreak_embed_sql out_var)
  file(GLOB sql_files CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/sql/[0-9][0-9][0-9]_*.sql")
  list(SORT sql_files)
  set(out "${CMAKE_CURRENT_BINARY_DIR}/migrations_embedded.cpp")
  string(REPLACE ";" "|" sql_joined "${sql_files}")
  add_custom_command(
    OUTPUT "${out}"
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DSQL_FILES=${sql_joined} -P "${PROJECT_SOURCE_DIR}/cmake/EmbedSqlScript.cmake"
    DEPENDS ${sql_files} "${PROJECT_SOURCE_DIR}/cmake/EmbedSqlScript.cmake"
    COMMENT "Embedding SQL migrations"
    VERBATIM)
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()

# The PostgreSQL ledger's migrations (sql/postgresql/NNN_*.sql) as embedded_pg_migrations().
function(daybreak_embed_pg_sql out_var)
  file(GLOB sql_files CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/sql/postgresql/[0-9][0-9][0-9]_*.sql")
  list(SORT sql_files)
  set(out "${CMAKE_CURRENT_BINARY_DIR}/pg_migrations_embedded.cpp")
  string(REPLACE ";" "|" sql_joined "${sql_files}")
  add_custom_command(
    OUTPUT "${out}"
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DSQL_FILES=${sql_joined} -DFUNC=embedded_pg_migrations -P "${PROJECT_SOURCE_DIR}/cmake/EmbedSqlScript.cmake"
    DEPENDS ${sql_files} "${PROJECT_SOURCE_DIR}/cmake/EmbedSqlScript.cmake"
    COMMENT "Embedding PostgreSQL migrations"
    VERBATIM)
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()
