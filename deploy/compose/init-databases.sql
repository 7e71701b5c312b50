-- Run once by the postgres image on an empty data volume, as POSTGRES_USER (subsidy).
-- Each service owns its own database and applies its own migrations to it on start.
CREATE DATABASE registry OWNER subsidy;
CREATE DATABASE calculator OWNER subsidy;
CREATE DATABASE gateway OWNER subsidy;
