Feature: Store logs reach Loki
  Every node runs an agent started from the node-agent template
  (collector/examples/node-agent.toml) with the node's metadata in its environment. It tails the
  node's log files and labels every line with that metadata. Location and device names get a
  per-scenario suffix (so do container and project names) so scenarios can run side by side
  against one stack.

  Background:
    Given the central stack

  Scenario: A node's log lines reach Loki with the node's labels
    Given a node agent for a "pos" node in region "eu-west" of brand "brand2" in "healthy" mode
    When the node writes 3 lines to its log file "app.log"
    Then within 20 s Loki returns those 3 lines for the node
    And every stream of the node is labelled with its region, location, node_type, device, brand and problem_mode

  Scenario: Docker container logs get container and compose labels
    Given a Docker engine running container "web-1" of compose service "web" in project "shop"
    And a collector following the Docker engine's containers
    When container "web-1" writes 2 lines to stdout and 1 line to stderr
    Then within 20 s Loki returns those 3 lines for container "web-1"
    And the container's streams are labelled container_name "web-1", compose_service "web" and compose_project "shop"
    And its stderr line is labelled stream "stderr"

  Scenario: Docker json-file logs are unwrapped by the docker stage
    Given a collector tailing Docker json-file logs with the docker stage
    When the container's json-file log gets 2 lines on stdout
    Then within 20 s Loki returns the 2 lines unwrapped from their JSON, labelled stream "stdout"

  Scenario: File tailing survives a collector restart without duplicates
    Given a node agent for a "server" node in region "eu-central" of brand "brand1" in "healthy" mode
    When the node writes 5 lines to its log file "app.log"
    Then within 20 s Loki returns those 5 lines for the node
    When the node agent is stopped, the node writes 5 lines to its log file "app.log", and the agent is started again
    Then within 20 s Loki returns those 10 lines for the node, each exactly once

  Scenario: File tailing after a crash re-reads at most its checkpoint, and Loki keeps each line once
    Given a node agent for a "server" node in region "eu-central" of brand "brand1" in "healthy" mode
    When the node writes 5 lines to its log file "app.log"
    Then within 20 s Loki returns those 5 lines for the node
    When the node agent is killed (kill -9), the node writes 5 lines to its log file "app.log", and the agent is started again
    Then within 20 s Loki returns those 10 lines for the node, each exactly once
